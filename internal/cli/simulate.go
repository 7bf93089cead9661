package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/simulate"
)

// exitSimulateLoss is simulate's exit code when a store would be left
// without a master or failover.maxPerHost would break.
const exitSimulateLoss = 2

func newSimulateCommand(g *globals) *cobra.Command {
	var (
		down   []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "simulate --down HOST[,HOST...]",
		Short: "Show what happens if hosts go out of service, touching nothing",
		Long: `simulate takes the hosts named by --down out of service on paper and
says what would happen: which stores lose their master and where each
master goes, how many masters every host holds before and after, the
stores left without a live replica, the stores left without any live
slot (without service), and whether failover.maxPerHost still holds.

Each store whose master is on a down host goes where a failover would
take it: back to its preferred master if it runs backwards, else to its
first replica, skipping slots on down hosts. When that would put more
than failover.maxPerHost of one down host's masters on one other host,
the next live replica whose host has room takes over; when none has
room, the first live one does and the limit is broken. Stores with
fewer live slots to go to choose first.

It reads the layout only, like spread: live roles are not read yet, so
it assumes every store runs on its preferred master.

Exit status: 0 every store keeps a master and the limit holds, 1 the
command failed (an unknown host, a layout that does not load), 2 a
store would be left without a master or the limit would break. A store
left with a master but no live replica is listed, not a failure.`,
		Example: "  cyrplan simulate --down imap6\n  cyrplan simulate --down imap6,imap7 --json\n  cyrplan simulate --down imap6 --down imap7",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load(layout.NoSpreadLimit())
			if err != nil {
				return err
			}
			hosts, unknown := simulate.KnownHosts(l, down)
			if len(unknown) > 0 {
				return fmt.Errorf("no %s %s in the layout (its hosts: %s)",
					plural(len(unknown), "host", "hosts"), strings.Join(unknown, ", "), strings.Join(l.HostNames(), ", "))
			}
			if len(hosts) == 0 {
				return fmt.Errorf("--down: name at least one host (the layout's hosts: %s)", strings.Join(l.HostNames(), ", "))
			}
			r := simulate.Down(l, nil, hosts)
			if asJSON {
				if err := writeJSON(g.stdout, r); err != nil {
					return err
				}
			} else {
				r.WriteText(g.stdout)
			}
			if !r.OK {
				return exitCode(exitSimulateLoss)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&down, "down", nil, "hosts out of service (comma-separated or repeated)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("down")
	return cmd
}
