package cli

import (
	"errors"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/spf13/cobra"
)

func newFailoverCommand(g *globals) *cobra.Command {
	var (
		f     hostFlags
		to    string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "failover STORE [--to SLOT] [--force]",
		Short: "Make another slot of a store its current master",
		Long: `failover is a planned switchover: it stops the current master (no more
writes), drains its replication log to the slot it promotes, records the
new roles on both hosts, restarts the promoted slot as master (it takes
the store's floating master address and announces it with a gratuitous
ARP) and starts the old master as its replica. Each step is printed as
it runs; a failed step says what state the store is left in.

Without --to it promotes the preferred master when the store runs
backwards (so running it twice moves a store there and back), else the
first replica. --force goes on when the current master's host is down:
nothing can be drained, and what it had not replicated may be lost.`,
		Example: `  cyrplan failover store23
  cyrplan failover store23 --to slot608
  cyrplan failover store23 --force   # imap6 is down`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.root != "" {
				return errors.New("failover needs SSH hosts; --root runs no commands")
			}
			l, err := g.load()
			if err != nil {
				return err
			}
			st := l.Stores[args[0]]
			if st == nil {
				return notFound("store", args[0], keys(l.Stores))
			}
			return fleet.Failover(cmd.Context(), f.config(g), l, st, to, force, g.stdout)
		},
	}
	f.addConnect(cmd.Flags())
	cmd.Flags().StringVar(&to, "to", "", "the `SLOT` to promote")
	cmd.Flags().BoolVar(&force, "force", false, "go on although the current master's host does not answer")
	return cmd
}
