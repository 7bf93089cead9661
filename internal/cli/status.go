package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
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
			rep, err := g.status(cmd.Context(), &f)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				rep.print(g.stdout)
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

type statusReport struct {
	Stores     []storeStatus     `json:"stores"`
	Moved      []moved           `json:"moved"`
	Down       map[string]string `json:"hostsDown,omitempty"`
	Attention  bool              `json:"attention"`
	LayoutHead string            `json:"layoutCommit,omitempty"`
	Applied    map[string]string `json:"appliedCommit,omitempty"` // host -> commit of its last apply, "" outside git, "never" before the first
}

// neverApplied is the applied commit of a host cyrplan never applied to.
const neverApplied = "never"

type moved struct {
	Store string `json:"store"`
	From  string `json:"preferredMaster"`
	To    string `json:"currentMaster"`
}

type storeStatus struct {
	Store     string       `json:"store"`
	Preferred string       `json:"preferredMaster"`
	Current   []string     `json:"currentMasters"`
	Replicas  []string     `json:"replicas"`
	Cyrus     string       `json:"cyrus"`
	Slots     []slotStatus `json:"slots"`
}

type slotStatus struct {
	Slot    string `json:"slot"`
	Host    string `json:"host"`
	Role    string `json:"role,omitempty"`
	Running string `json:"running,omitempty"` // the master's executable
	Health  string `json:"health"`            // "ok" or the problem
	Drift   int    `json:"drift"`             // files changed by hand
	Backlog int    `json:"backlog"`           // lines in its sync logs (as master)
	Error   string `json:"error,omitempty"`
}

func (g *globals) status(ctx context.Context, f *hostFlags) (*statusReport, error) {
	pl, err := fleet.Plan(ctx, f.config(g), fleet.WithoutSecrets)
	if err != nil {
		return nil, err
	}
	defer pl.Close()
	l, scope, hs, obs, p := pl.Layout, pl.Scope, pl.Hosts, pl.Observed, pl.Plan
	drift := map[string]int{}
	for _, h := range p.Hosts {
		for _, fc := range h.Files {
			if fc.Drift {
				drift[fc.Slot]++
			}
		}
	}
	rep := &statusReport{Down: map[string]string{}, Applied: map[string]string{}, LayoutHead: p.Commit}
	for h, err := range hs.Errs {
		rep.Down[h] = err.Error()
		rep.Attention = true
	}
	for h, o := range obs {
		rep.Applied[h] = neverApplied
		if o.Manifest != nil {
			rep.Applied[h] = o.Manifest.Commit
		}
	}
	var mu sync.Mutex
	var stores []string
	for _, name := range l.StoreNames() {
		for _, sn := range l.Stores[name].Slots() {
			if scope.Slot(sn) {
				stores = append(stores, name)
				break
			}
		}
	}
	results := map[string]storeStatus{}
	movedTo := map[string]string{}
	parallel.Each(stores, f.parallelism, func(name string) {
		st := l.Stores[name]
		lv := store.Read(ctx, l, st, hs.Conns, hs.Errs)
		ss := storeStatus{Store: name, Preferred: st.Master, Current: lv.Masters(), Replicas: lv.Replicas(), Cyrus: st.Build}
		bad := len(ss.Current) != 1
		for _, sn := range st.Slots() {
			s := slotStatusOf(ctx, l, lv, hs.Conns, sn, drift[sn], f.root != "")
			if (s.Health != "ok" && f.root == "") || s.Drift > 0 || s.Error != "" {
				bad = true
			}
			ss.Slots = append(ss.Slots, s)
		}
		mu.Lock()
		defer mu.Unlock()
		results[name] = ss
		if bad {
			rep.Attention = true
		}
		if lv.Moved() {
			movedTo[name] = lv.Masters()[0]
		}
	})
	for _, name := range stores {
		rep.Stores = append(rep.Stores, results[name])
		if to, ok := movedTo[name]; ok {
			rep.Moved = append(rep.Moved, moved{Store: name, From: l.Stores[name].Master, To: to})
		}
	}
	return rep, nil
}

// slotStatusOf asks a slot's host whether its master runs and from which
// build, checks its banner, and counts its replication backlog.
func slotStatusOf(ctx context.Context, l *layout.Layout, lv *store.Live, hosts map[string]transport.Host, sn string, drift int, local bool) slotStatus {
	s := l.Slots[sn]
	ss := slotStatus{Slot: sn, Host: s.Host, Role: string(lv.Roles[sn]), Drift: drift}
	if err := lv.Down[sn]; err != nil {
		ss.Health, ss.Error = "host down", err.Error()
		return ss
	}
	h := hosts[s.Host]
	if local {
		ss.Health = "unknown (--root)"
		return ss
	}
	run, err := onhost.Status(ctx, h, sn)
	if err != nil || !run.Running {
		ss.Health = "not running"
		return ss
	}
	ss.Running = run.Exe
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := health.Banner(hctx, fmt.Sprintf("%s:%d", l.Hosts[s.Host].Address, s.IMAPPort), sn); err != nil {
		ss.Health = "no banner: " + err.Error()
	} else {
		ss.Health = "ok"
	}
	if lv.Roles[sn] == layout.Master {
		for _, peer := range lv.Store.Slots() {
			if peer == sn {
				continue
			}
			for _, log := range []string{"log", "log-run"} {
				data, err := h.ReadFile(ctx, hostpath.Of(s).SyncLogDir(peer)+"/"+log)
				if err == nil {
					ss.Backlog += strings.Count(string(data), "\n")
				}
			}
		}
	}
	return ss
}

func (r *statusReport) print(w io.Writer) {
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
			case c == neverApplied:
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
