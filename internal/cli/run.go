package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/layout"
)

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
				found, err := fleet.Locate(cmd.Context(), f.config(g), l, user)
				if err != nil {
					return err
				}
				name = found.Store
			} else {
				name = target[0]
			}
			announce := func(what string) { fmt.Fprintln(g.stderr, "cyrplan: "+what) }
			code, err := fleet.RunTool(cmd.Context(), f.config(g), l, fleet.Tool{Name: name, Role: role, Tool: tool[0], Args: tool[1:]},
				announce, g.stdout, g.stderr)
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
