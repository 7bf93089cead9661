package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
				printSimulation(g.stdout, r)
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

func printSimulation(w io.Writer, r *simulate.Result) {
	down := strings.Join(r.Down, ", ")
	if len(r.Stores) == 0 {
		fmt.Fprintf(w, "No store has its master on %s.\n", down)
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STORE\tFROM\tTO\tWHY")
		for _, m := range r.Stores {
			to := "-"
			if m.ToSlot != "" {
				to = fmt.Sprintf("%s (%s)", m.ToSlot, m.ToHost)
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\n", m.Store, m.FromSlot, m.FromHost, to, m.Note)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nMasters per host:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tBEFORE\tAFTER")
	for _, h := range r.Hosts {
		after := fmt.Sprint(h.After)
		if h.Down {
			after += " (down)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", h.Host, h.Before, after)
	}
	tw.Flush()

	fmt.Fprintln(w)
	if len(r.NoLiveReplica) == 0 {
		fmt.Fprintln(w, "Every store with a master keeps a live replica.")
	} else {
		fmt.Fprintf(w, "No live replica (the master is the only live slot): %s.\n", strings.Join(r.NoLiveReplica, ", "))
	}
	if len(r.NoService) == 0 {
		fmt.Fprintln(w, "Every store keeps a master.")
	} else {
		fmt.Fprintf(w, "WITHOUT SERVICE (no live slot): %s.\n", strings.Join(r.NoService, ", "))
	}

	worst := "No master moves"
	if r.Worst.Masters > 0 {
		worst = fmt.Sprintf("Worst concentration: %d of %s's masters on %s", r.Worst.Masters, r.Worst.From, r.Worst.To)
	}
	switch {
	case r.Limit == 0:
		fmt.Fprintf(w, "%s (no limit set: failover.maxPerHost).\n", worst)
	case r.LimitHolds:
		fmt.Fprintf(w, "%s; the limit is %d: ok.\n", worst, r.Limit)
	default:
		pairs := make([]string, len(r.OverLimit))
		for i, p := range r.OverLimit {
			pairs[i] = fmt.Sprintf("%d of %s's masters on %s", p.Masters, p.From, p.To)
		}
		fmt.Fprintf(w, "%s; the limit is %d: OVER THE LIMIT (%s).\n", worst, r.Limit, strings.Join(pairs, ", "))
	}
}
