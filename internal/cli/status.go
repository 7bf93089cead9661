package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
)

// exitAttention is status's exit code when something needs a look.
const exitAttention = 2

func newStatusCommand(g *globals) *cobra.Command {
	var (
		f      hostFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every store's masters, replicas, builds, health and drift, and the stores running backwards",
		Long: `status reads every host in parallel and shows, per store: the preferred
and the current master (the role each host records), the replicas, the
build the layout declares and the one each slot's master process runs,
health (each slot's IMAP banner), drift (files changed by hand since the
last apply), the replication backlog (lines waiting in the master's
sync log per replica), and hosts that do not answer. Stores whose current
master is not their preferred master are listed under MOVED.

Exit status: 0 all is well (a store running backwards is not a fault),
1 the command failed, 2 something needs attention: a slot down or
unhealthy, a host not answering, drift, or a store without exactly one
master. A cron job can alert on a non-zero exit.`,
		Example: "  cyrplan status\n  cyrplan status --target store23 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := fleet.Status(cmd.Context(), f.config(g))
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				printStatus(g.stdout, rep)
			}
			if rep.Attention {
				return exitCode(exitAttention)
			}
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printStatus(w io.Writer, r *fleet.StatusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tMASTER\tREPLICAS\tCYRUS\tRUNNING\tHEALTH\tDRIFT\tBACKLOG")
	for _, s := range r.Stores {
		master := strings.Join(s.Current, "+")
		if master == "" {
			master = "NONE"
		}
		if len(s.Current) != 1 || s.Current[0] != s.Preferred {
			master += " (preferred " + s.Preferred + ")"
		}
		running := map[string]bool{}
		health, drift, backlog := "ok", 0, 0
		for _, sl := range s.Slots {
			if sl.Running != "" {
				running[strings.TrimSuffix(sl.Running, "/bin/master")] = true
			}
			if sl.Health != "ok" {
				health = sl.Slot + ": " + sl.Health
			}
			drift += sl.Drift
			backlog += sl.Backlog
		}
		var builds []string
		for b := range running {
			builds = append(builds, b)
		}
		sort.Strings(builds)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Store, master, strings.Join(s.Replicas, ","), s.Cyrus,
			orDash(strings.Join(builds, ",")), health, drift, backlog)
	}
	tw.Flush()
	if len(r.Moved) > 0 {
		fmt.Fprintln(w, "\nMOVED:")
		for _, m := range r.Moved {
			fmt.Fprintf(w, "%-9s %s => %s\n", m.Store, m.From, m.To)
		}
	}
	if len(r.Applied) > 0 {
		fmt.Fprintln(w, "\nApplied layout commits:")
		byCommit := map[string][]string{}
		for h, c := range r.Applied {
			byCommit[c] = append(byCommit[c], h)
		}
		for _, c := range keys(byCommit) {
			hosts := byCommit[c]
			sort.Strings(hosts)
			what := short(c)
			switch {
			case c == fleet.NeverApplied:
				what = "never applied"
			case c == "":
				what = "not from git"
			case c == r.LayoutHead:
				what += " (the layout's HEAD)"
			}
			fmt.Fprintf(w, "  %s: %s\n", what, strings.Join(hosts, ", "))
		}
	}
	if len(r.Down) > 0 {
		fmt.Fprintln(w, "\nNot answering:")
		for _, h := range keys(r.Down) {
			fmt.Fprintf(w, "  %s: %s\n", h, r.Down[h])
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
