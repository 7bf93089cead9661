package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/cyrplan/cyrplan/internal/apply"
	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
)

var (
	toolRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	userRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)
)

// resolveSlot returns the slot that name (a store or a slot) means in
// role, reading the store's roles from its hosts.
func resolveSlot(ctx context.Context, l *layout.Layout, name string, role layout.Role, fl *Hosts) (string, error) {
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

// Tool is a Cyrus tool to run on a slot: the one Name (a store or a
// slot) means in Role.
type Tool struct {
	Name string
	Role layout.Role
	Tool string   // a bare tool name of the slot's build
	Args []string // {conf}, {meta} and {data} stand for the slot's paths
}

// RunTool runs t with the slot's build and -C, streaming its output,
// scrubbed of secrets, to stdout and stderr; announce gets the command
// line first. It returns the tool's exit status.
func RunTool(ctx context.Context, c Config, l *layout.Layout, t Tool, announce func(string), stdout, stderr io.Writer) (int, error) {
	name, role, tool, args := t.Name, t.Role, t.Tool, t.Args
	if !toolRE.MatchString(tool) {
		return 0, fmt.Errorf("%q is not a Cyrus tool name: give a bare name like mbpath, not a path", tool)
	}
	fl, err := c.Connect(ctx, l, storeHosts(l, name))
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
	paths := strings.NewReplacer("{conf}", hostpath.Of(s.Name, s.Meta).ConfigDB, "{meta}", s.Meta, "{data}", s.Data)
	shown := []string{bin}
	words := []string{shell.Quote(bin), "-C", shell.Quote(hostpath.Of(s.Name, s.Meta).IMAPDConf)}
	for _, a := range args {
		shown = append(shown, paths.Replace(a))
		words = append(words, shell.Quote(paths.Replace(a)))
	}
	announce(fmt.Sprintf("%s on %s (%s): %s", slot, s.Host, roleOf(l, slot, role, name), strings.Join(shown, " ")))
	// The tool's output is scrubbed of every secret: cyr_info conf, say,
	// prints the replication password.
	known := secret.Known(l, c.Getenv)
	out, errOut := secret.NewWriter(stdout, known), secret.NewWriter(stderr, known)
	err = h.Run(ctx, strings.Join(words, " "), nil, out, errOut)
	out.Close()
	errOut.Close()
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

// Located is where a user's mailbox is.
type Located struct {
	Store    string
	Master   string
	Replicas []string
}

// Locate finds the store whose current master holds user's mailbox,
// asking every store's master at once.
func Locate(ctx context.Context, c Config, l *layout.Layout, user string) (*Located, error) {
	if !userRE.MatchString(user) {
		return nil, fmt.Errorf("%q is not a user name", user)
	}
	fl, err := c.Connect(ctx, l, l.HostNames())
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	var (
		mu    sync.Mutex
		found []*Located
		errs  []string
	)
	parallel.Each(l.StoreNames(), c.parallelism(), func(name string) {
		lv := store.Read(ctx, l, l.Stores[name], fl.Conns, fl.Errs)
		m, err := lv.Master()
		if err != nil {
			mu.Lock()
			errs = append(errs, err.Error())
			mu.Unlock()
			return
		}
		s := l.Slots[m]
		cmd := shell.Quote(l.BuildOf(m).Prefix+"/bin/mbpath") + " -C " + shell.Quote(hostpath.Of(s.Name, s.Meta).IMAPDConf) + " " + shell.Quote("user/"+user)
		err = fl.Conns[s.Host].Run(ctx, cmd, nil, nil, nil)
		var ee *transport.ExitError
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			found = append(found, &Located{Store: name, Master: m, Replicas: lv.Replicas()})
		case !errors.As(err, &ee):
			errs = append(errs, fmt.Sprintf("%s (%s on %s): %v", name, m, s.Host, err))
		}
	})
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		var names []string
		for _, x := range found {
			names = append(names, x.Store)
		}
		return nil, fmt.Errorf("user/%s is on %d stores: %s", user, len(found), strings.Join(names, ", "))
	case len(errs) > 0:
		return nil, fmt.Errorf("user/%s is on no store that answered; these did not:\n  %s", user, strings.Join(errs, "\n  "))
	}
	return nil, fmt.Errorf("no store holds user/%s", user)
}

// Unlock breaks the apply lock of each named host, whoever holds it, and
// says for each whose lock it was (nil: it was not locked).
func Unlock(ctx context.Context, c Config, l *layout.Layout, hosts []string) ([]*apply.BrokenLock, error) {
	fl, err := c.Connect(ctx, l, hosts)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	var out []*apply.BrokenLock
	for _, n := range hosts {
		if err := fl.Errs[n]; err != nil {
			return out, err
		}
		held, err := apply.BreakLock(ctx, fl.Conns[n])
		if err != nil {
			return out, err
		}
		out = append(out, held)
	}
	return out, nil
}
