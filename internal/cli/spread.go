package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/layout"
)

func newSpreadCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "spread",
		Short: "Show where each host's masters fail over to, and check the layout's limit",
		Long: `For every host, spread lists the hosts that its stores' masters fail
over to (each store's first replica) and the worst concentration: the
most masters of one host that would land on a single other host. It
exits 1 when that is above failover.maxPerHost.`,
		Example: "  cyrplan spread --layout ./layout\n  cyrplan spread --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load(layout.NoSpreadLimit())
			if err != nil {
				return err
			}
			report := spreadReportOf(l)
			if asJSON {
				if err := writeJSON(g.stdout, report); err != nil {
					return err
				}
			} else {
				report.print(g)
			}
			if !report.OK {
				return exitCode(exitFailure)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type spreadReport struct {
	Hosts []layout.Spread `json:"hosts"`
	Worst int             `json:"worst"`
	Limit int             `json:"limit,omitempty"` // 0: no limit set
	OK    bool            `json:"ok"`
}

func spreadReportOf(l *layout.Layout) *spreadReport {
	r := &spreadReport{Hosts: l.Spreads(), Limit: l.Failover.MaxPerHost, OK: true}
	for _, sp := range r.Hosts {
		r.Worst = max(r.Worst, sp.Worst)
	}
	if r.Limit > 0 && r.Worst > r.Limit {
		r.OK = false
	}
	return r
}

func (r *spreadReport) print(g *globals) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tMASTERS\tFAIL OVER TO\tWORST")
	for _, sp := range r.Hosts {
		targets := make([]string, 0, len(sp.To))
		for t := range sp.To {
			targets = append(targets, t)
		}
		sortNatural(targets)
		parts := make([]string, len(targets))
		for i, t := range targets {
			parts[i] = fmt.Sprintf("%s (%d)", t, sp.To[t])
		}
		worst := "-"
		if sp.Worst > 0 {
			worst = fmt.Sprintf("%d to %s", sp.Worst, sp.WorstTo)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", sp.Host, sp.Masters, strings.Join(parts, ", "), worst)
	}
	tw.Flush()
	switch {
	case r.Limit == 0:
		fmt.Fprintf(g.stdout, "\nWorst concentration: %d masters of one host on one other host (no limit set: failover.maxPerHost).\n", r.Worst)
	case r.OK:
		fmt.Fprintf(g.stdout, "\nWorst concentration: %d of one host's masters on one other host; the limit is %d: ok.\n", r.Worst, r.Limit)
	default:
		fmt.Fprintf(g.stdout, "\nWorst concentration: %d of one host's masters on one other host; the limit is %d: OVER THE LIMIT.\n", r.Worst, r.Limit)
	}
}

// sortNatural sorts names with numeric suffixes by number (imap9 before imap10).
func sortNatural(names []string) {
	sort.Slice(names, func(i, j int) bool {
		a, b := strings.TrimRight(names[i], "0123456789"), strings.TrimRight(names[j], "0123456789")
		if a == b && len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
}
