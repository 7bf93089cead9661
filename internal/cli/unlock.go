package cli

import (
	"fmt"

	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/apply"
)

func newUnlockCommand(g *globals) *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "unlock HOST...",
		Short: "Break the apply lock of hosts whose apply died elsewhere",
		Long: `unlock removes a host's apply lock whoever holds it. Use it only when no
apply is running: a lock left by a cyrplan that was killed on this same
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
			fl, err := f.connect(cmd.Context(), l, args)
			if err != nil {
				return err
			}
			defer fl.close()
			for _, n := range args {
				if err := fl.errs[n]; err != nil {
					return err
				}
				held, err := apply.BreakLock(cmd.Context(), fl.hosts[n])
				switch {
				case err != nil:
					return err
				case held == nil:
					fmt.Fprintf(g.stdout, "%s: not locked\n", n)
				default:
					fmt.Fprintf(g.stdout, "%s: removed the lock of apply %s by %s (pid %d, since %s)\n", n, held.ApplyID, held.Holder, held.PID, held.Time.Format(time.RFC3339))
				}
			}
			return nil
		},
	}
	f.addConnect(cmd.Flags())
	return cmd
}
