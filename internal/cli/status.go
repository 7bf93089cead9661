package cli

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/fleetpage"
	"github.com/cyrplan/cyrplan/internal/metrics"
	"github.com/cyrplan/cyrplan/internal/report"
)

// The formats status writes.
var statusFormats = []string{"text", "json", "openmetrics", "html"}

// nagiosHelp documents the exit codes of status and verify.
const nagiosHelp = `Exit status follows the Nagios/Icinga plugin convention, so that a
monitoring system can run the command as a check:
  0 OK        all is well
  1 WARNING   look soon`

func newStatusCommand(g *globals) *cobra.Command {
	var (
		f      hostFlags
		format string
		opts   fleet.StatusOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every store's masters, replicas, builds, health, drift and replication, and the stores running backwards",
		Long: `status reads every host in parallel and shows, per store: the preferred
and the current master (the role each host records), the replicas, the
build the layout declares and the one each slot's master process runs,
health (each slot's IMAP banner), drift (files changed by hand since the
last apply), and the current master's replication to each replica: the
entries waiting in its sync log and the age of the oldest, whether its
rolling sync_client runs, the last canary's arrival time, and what the
last verify found. Stores whose current master is not their preferred
master are listed under MOVED.

--canary sends a fresh canary through each store's floating master
address (logging in as the layout's replication user, an admin) and
waits for it on every replica; the result is kept on the master's host
and shown by later runs.

--format openmetrics writes the same facts for Prometheus (for
node_exporter's textfile collector, say), --format html a self-contained
page of the fleet (see also cyrplan serve), --format json all of it.

` + nagiosHelp + `: drift, a store running backwards, a replication
              entry waiting over 5 minutes
  2 CRITICAL  act now: a host not answering, a slot down or without its
              banner, a store without exactly one master, a sync_client
              not running, a canary that did not arrive, a replica the
              last verify found different
  3 UNKNOWN   the check could not run (a bad layout or flag, say)`,
		Example: "  cyrplan status\n  cyrplan status --target store23 --format json\n  cyrplan status --canary --format openmetrics > /var/lib/node_exporter/cyrplan.prom",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				format = "json"
			}
			if !slices.Contains(statusFormats, format) {
				return unknownf("--format %q: want one of %s", format, strings.Join(statusFormats, ", "))
			}
			pr := newProgress(g.stderr, "status: stores read")
			opts.Progress = pr.step
			rep, err := fleet.Status(cmd.Context(), f.config(g), opts)
			pr.done()
			if err != nil {
				return unknown(err)
			}
			if err := writeStatus(g.stdout, rep, format); err != nil {
				return unknown(err)
			}
			return exitCode(int(rep.Level))
		},
	}
	nagiosFlagErrors(cmd)
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: "+strings.Join(statusFormats, ", "))
	cmd.Flags().BoolVar(&asJSON, "json", false, "short for --format json")
	cmd.Flags().BoolVar(&opts.Canary, "canary", false, "send a fresh canary through each store's master and wait for it on the replicas")
	cmd.Flags().DurationVar(&opts.CanaryTimeout, "canary-timeout", time.Minute, "how long a canary may take to arrive")
	return cmd
}

// writeStatus writes rep in format.
func writeStatus(w io.Writer, rep *report.Status, format string) error {
	switch format {
	case "json":
		return writeJSON(w, rep)
	case "openmetrics":
		return metrics.Write(w, rep)
	case "html":
		return fleetpage.Write(w, rep, fleetpage.Options{})
	}
	printStatus(w, rep, painterFor(w))
	return nil
}

// unknown ends status or verify with the Nagios "unknown" code.
func unknown(err error) error { return &exitError{code: int(report.Unknown), err: err} }

func unknownf(format string, args ...any) error { return unknown(fmt.Errorf(format, args...)) }

// nagiosFlagErrors makes a bad flag of cmd end with "unknown" too.
func nagiosFlagErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return unknown(err) })
}

func printStatus(w io.Writer, r *report.Status, p painter) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tMASTER\tREPLICAS\tCYRUS\tRUNNING\tHEALTH\tDRIFT\tBACKLOG\tCANARY")
	for _, s := range r.Stores {
		master := strings.Join(s.Current, "+")
		if master == "" {
			master = "NONE"
		}
		if len(s.Current) != 1 || s.Current[0] != s.Preferred {
			master += " (preferred " + s.Preferred + ")"
		}
		var builds []string
		health, drift := report.HealthOK, 0
		for _, sl := range s.Slots {
			if b := strings.TrimSuffix(sl.Running, "/bin/master"); b != "" && !slices.Contains(builds, b) {
				builds = append(builds, b)
			}
			if sl.Health != report.HealthOK {
				health = sl.Health
				if sl.Health != report.HealthUnknown {
					health = sl.Slot + ": " + sl.Health
				}
			}
			drift += sl.Drift
		}
		slices.Sort(builds)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Store, master, strings.Join(s.Replicas, ","), s.Cyrus,
			orDash(strings.Join(builds, ",")), health, drift, backlogText(s.Replication), canaryText(s.Replication))
	}
	tw.Flush()
	io.WriteString(w, p.lines(buf.String(), func(i int) report.Level {
		if i == 0 || i > len(r.Stores) {
			return report.OK
		}
		return r.Stores[i-1].Level
	}))
	if len(r.Moved) > 0 {
		fmt.Fprintln(w, "\n"+p.bold("MOVED:"))
		for _, m := range r.Moved {
			fmt.Fprintln(w, p.level(report.Warning, fmt.Sprintf("%-9s %s => %s", m.Store, m.From, m.To)))
		}
	}
	printApplied(w, r)
	var down []string
	for _, h := range r.Hosts {
		if h.Error != "" {
			down = append(down, fmt.Sprintf("  %s: %s", h.Name, h.Error))
		}
	}
	if len(down) > 0 {
		fmt.Fprintln(w, "\n"+p.bold("Not answering:"))
		fmt.Fprintln(w, p.level(report.Critical, strings.Join(down, "\n")))
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\n"+p.bold("Problems:"))
		probs := slices.Clone(r.Problems)
		slices.SortStableFunc(probs, func(a, b report.Problem) int { return int(b.Level) - int(a.Level) })
		for _, pr := range probs {
			fmt.Fprintln(w, p.level(pr.Level, fmt.Sprintf("  %-8s %s", strings.ToUpper(pr.Level.String()), pr)))
		}
	}
	fmt.Fprintf(w, "\n%s\n", p.level(r.Level, summary(r.Level, r.Problems)))
}

// summary is the last line of status and verify, the Nagios way:
// "CRITICAL: 2 critical, 1 warning".
func summary(l report.Level, probs []report.Problem) string {
	n := map[report.Level]int{}
	for _, p := range probs {
		n[p.Level]++
	}
	var parts []string
	if c := n[report.Critical]; c > 0 {
		parts = append(parts, fmt.Sprintf("%d critical", c))
	}
	if c := n[report.Warning]; c > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", c, plural(c, "warning", "warnings")))
	}
	if len(parts) == 0 {
		return strings.ToUpper(l.String()) + ": all is well"
	}
	return strings.ToUpper(l.String()) + ": " + strings.Join(parts, ", ")
}

// backlogText is a store's waiting replication entries, with the age of
// the oldest: "0", "42 (10m0s)".
func backlogText(rs []report.Replication) string {
	n, age := 0, 0.0
	for _, r := range rs {
		n += r.Backlog
		age = max(age, r.BacklogAge)
	}
	if n == 0 || age == 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%s)", n, time.Duration(age)*time.Second)
}

// canaryText is how the last canary did: the slowest arrival, "failed",
// or "-" when none was sent to this master.
func canaryText(rs []report.Replication) string {
	worst, seen := 0.0, false
	for _, r := range rs {
		if r.Canary == nil {
			continue
		}
		if r.Canary.Error != "" {
			return "failed"
		}
		seen, worst = true, max(worst, r.Canary.Seconds)
	}
	if !seen {
		return "-"
	}
	return (time.Duration(worst * float64(time.Second))).Round(time.Millisecond).String()
}

// printApplied lists the layout commit each host was last applied from.
func printApplied(w io.Writer, r *report.Status) {
	byCommit := map[string][]string{}
	for _, h := range r.Hosts {
		if h.Error == "" {
			byCommit[h.Applied] = append(byCommit[h.Applied], h.Name)
		}
	}
	if len(byCommit) == 0 {
		return
	}
	fmt.Fprintln(w, "\nApplied layout commits:")
	for _, c := range keys(byCommit) {
		what := short(c)
		switch {
		case c == report.NeverApplied:
			what = "never applied"
		case c == "":
			what = "not from git"
		case c == r.LayoutHead:
			what += " (the layout's HEAD)"
		}
		fmt.Fprintf(w, "  %s: %s\n", what, strings.Join(byCommit[c], ", "))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
