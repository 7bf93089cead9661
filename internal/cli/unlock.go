package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/hostpath"
)

func newUnlockCommand(g *globals) *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "unlock HOST...",
		Short: "Break the apply lock of hosts whose apply died elsewhere",
		Long: `unlock removes a host's apply lock whoever holds it, and one it cannot read
(an apply killed while taking the lock leaves it empty). Use it only when
no apply is running: a lock left by a cyrplan that was killed on this same
machine is broken by the next apply on its own.`,
		Example: "  cyrplan unlock imap6 imap3",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			for _, n := range args {
				if l.Hosts[n] == nil {
					return fmt.Errorf("no host %q in the layout", n)
				}
			}
			broken, err := fleet.Unlock(cmd.Context(), f.config(g), l, args)
			for i, held := range broken {
				n := args[i]
				switch {
				case held == nil:
					fmt.Fprintf(g.stdout, "%s: not locked\n", n)
				case held.Unreadable != "":
					fmt.Fprintf(g.stdout, "%s: removed an unreadable lock (%s: %s)\n", n, hostpath.Lock, held.Unreadable)
				default:
					fmt.Fprintf(g.stdout, "%s: removed the lock of apply %s by %s (pid %d, since %s)\n", n, held.ApplyID, held.Holder, held.PID, held.Time.Format(time.RFC3339))
				}
			}
			return err
		},
	}
	f.addConnect(cmd.Flags())
	return cmd
}
