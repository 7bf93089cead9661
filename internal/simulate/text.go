package simulate

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the result for a terminal: the stores that move, the
// masters per host before and after, the stores left without a replica
// or a master, and whether the limit holds.
func (r *Result) WriteText(w io.Writer) {
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
