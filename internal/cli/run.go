package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
)

var toolRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func newRunCommand(g *globals) *cobra.Command {
	var (
		f       hostFlags
		master  bool
		replica bool
		user    string
	)
	cmd := &cobra.Command{
		Use:   "run [-m|-r] (STORE|SLOT | --user USER) -- TOOL [ARGS...]",
		Short: "Run a Cyrus tool on a store's current master or replica, with the right -C and build",
		Long: `run finds the slot (a store's current master with -m, the default, or
its replica with -r; or the slot named), its host and its build, and runs
<prefix>/bin/TOOL -C <the slot's imapd.conf> ARGS there over SSH,
streaming the tool's output. It exits with the tool's exit status.
TOOL must be a Cyrus tool of that build: a bare name, not a path.
In ARGS, {conf} stands for the slot's configdirectory and {meta} and
{data} for its partitions. With --user, the store is the one that holds
the user's mailbox.`,
		Example: `  cyrplan run -r store23 -- cyr_dbtool {conf}/mailboxes.db twoskip show user.brong.
  cyrplan run store23 -- mbpath user/brong
  cyrplan run --user brong -- quota user/brong`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 {
				return errors.New("put the tool after --: cyrplan run store23 -- mbpath user/brong")
			}
			target, tool := args[:dash], args[dash:]
			switch {
			case master && replica:
				return errors.New("-m and -r exclude each other")
			case len(tool) == 0:
				return errors.New("no tool after --")
			case user == "" && len(target) != 1:
				return errors.New("name one store or slot before --, or use --user")
			case user != "" && len(target) != 0:
				return errors.New("--user finds the store itself: name no store or slot")
			}
			if f.root != "" {
				return errors.New("run needs SSH hosts; --root runs no commands")
			}
			l, err := g.load()
			if err != nil {
				return err
			}
			role := layout.Master
			if replica {
				role = layout.Replica
			}
			name := ""
			if user != "" {
				found, err := g.locate(cmd.Context(), &f, l, user)
				if err != nil {
					return err
				}
				name = found.Store
			} else {
				name = target[0]
			}
			code, err := g.runTool(cmd.Context(), &f, l, name, role, tool[0], tool[1:])
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	f.addConnect(cmd.Flags())
	cmd.Flags().BoolVarP(&master, "master", "m", false, "run on the store's current master (the default)")
	cmd.Flags().BoolVarP(&replica, "replica", "r", false, "run on the store's replica")
	cmd.Flags().StringVar(&user, "user", "", "run on the store that holds `USER`'s mailbox")
	return cmd
}

// resolveSlot returns the slot that name (a store or a slot) means in
// role, reading the store's roles from its hosts.
func resolveSlot(ctx context.Context, l *layout.Layout, name string, role layout.Role, fl *fleet.Hosts) (string, error) {
	if l.Slots[name] != nil {
		return name, nil
	}
	st := l.Stores[name]
	if st == nil {
		return "", fmt.Errorf("no store or slot is called %q", name)
	}
	lv := store.Read(ctx, l, st, fl.Conns, fl.Errs)
	if role == layout.Replica {
		return lv.Replica()
	}
	return lv.Master()
}

// storeHosts returns the hosts of the slots of name (a store or a slot).
func storeHosts(l *layout.Layout, name string) []string {
	var slots []string
	if st := l.Stores[name]; st != nil {
		slots = st.Slots()
	} else if l.Slots[name] != nil {
		slots = []string{name}
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range slots {
		if h := l.Slots[s].Host; !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// runTool runs a Cyrus tool on the slot name means and returns its exit status.
func (g *globals) runTool(ctx context.Context, f *hostFlags, l *layout.Layout, name string, role layout.Role, tool string, args []string) (int, error) {
	if !toolRE.MatchString(tool) {
		return 0, fmt.Errorf("%q is not a Cyrus tool name: give a bare name like mbpath, not a path", tool)
	}
	fl, err := f.config(g).Connect(ctx, l, storeHosts(l, name))
	if err != nil {
		return 0, err
	}
	defer fl.Close()
	slot, err := resolveSlot(ctx, l, name, role, fl)
	if err != nil {
		return 0, err
	}
	s := l.Slots[slot]
	h := fl.Conns[s.Host]
	if h == nil {
		return 0, fl.Errs[s.Host]
	}
	build := l.BuildOf(slot)
	bin := build.Prefix + "/bin/" + tool
	var ee *transport.ExitError
	if err := h.Run(ctx, "test -x "+shell.Quote(bin), nil, nil, nil); errors.As(err, &ee) {
		return 0, fmt.Errorf("%s is not a tool of Cyrus build %s: %s does not exist on %s", tool, build.Name, bin, s.Host)
	} else if err != nil {
		return 0, err
	}
	// The slot's own paths, so that nobody types them: {conf} is its
	// configdirectory, {meta} and {data} its partitions.
	paths := strings.NewReplacer("{conf}", hostpath.Of(s).ConfigDB, "{meta}", s.Meta, "{data}", s.Data)
	shown := []string{bin}
	words := []string{shell.Quote(bin), "-C", shell.Quote(hostpath.Of(s).IMAPDConf)}
	for _, a := range args {
		shown = append(shown, paths.Replace(a))
		words = append(words, shell.Quote(paths.Replace(a)))
	}
	fmt.Fprintf(g.stderr, "cyrplan: %s on %s (%s): %s\n", slot, s.Host, roleOf(l, slot, role, name), strings.Join(shown, " "))
	// The tool's output is scrubbed of every secret: cyr_info conf, say,
	// prints the replication password.
	known := secret.Known(l, nil)
	stdout, stderr := secret.NewWriter(g.stdout, known), secret.NewWriter(g.stderr, known)
	err = h.Run(ctx, strings.Join(words, " "), nil, stdout, stderr)
	stdout.Close()
	stderr.Close()
	if errors.As(err, &ee) {
		return ee.Code, nil
	}
	return 0, err
}

func roleOf(l *layout.Layout, slot string, role layout.Role, name string) string {
	if l.Stores[name] != nil {
		return string(role) + " of " + name
	}
	if st := l.Slots[slot].Store; st != "" {
		return "slot of " + st
	}
	return "spare slot"
}
