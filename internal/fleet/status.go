package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/canary"
	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// BacklogWarning is the age of the oldest waiting replication entry
// from which status warns.
const BacklogWarning = 5 * time.Minute

// healthHostDown is the health of a slot whose host did not answer.
const healthHostDown = "host down"

// StatusOptions are what status does besides reading.
type StatusOptions struct {
	// Canary sends a fresh canary through every store's master and
	// waits for it on the replicas, recording the result on the
	// master's host (status shows the last one otherwise).
	Canary bool
	// CanaryTimeout is how long a canary may take to arrive; zero
	// means a minute.
	CanaryTimeout time.Duration
	// Progress, if set, is told each time a store is read.
	Progress func(done, total int)
}

// Status reads every host of c in parallel and reports on every store
// with a slot in scope.
func Status(ctx context.Context, c Config, opts StatusOptions) (*report.Status, error) {
	pl, err := Plan(ctx, c, WithoutSecrets)
	if err != nil {
		return nil, err
	}
	defer pl.Close()
	l, scope, hs, obs, p := pl.Layout, pl.Scope, pl.Hosts, pl.Observed, pl.Plan
	var login canary.Config
	if opts.Canary {
		if login, err = canaryLogin(l, c); err != nil {
			return nil, err
		}
		if opts.CanaryTimeout > 0 {
			login.Timeout = opts.CanaryTimeout
		}
	}
	drift := map[string]int{}
	for _, h := range p.Hosts {
		for _, fc := range h.Files {
			if fc.Drift {
				drift[fc.Slot]++
			}
		}
	}
	rep := &report.Status{Time: time.Now().UTC(), LayoutHead: p.Commit, Local: c.Root != ""}
	var stores []string
	inScope := map[string]bool{} // the slots of the stores reported (and spares in scope)
	for _, name := range l.StoreNames() {
		if slices.ContainsFunc(l.Stores[name].Slots(), scope.Slot) {
			stores = append(stores, name)
			for _, sn := range l.Stores[name].Slots() {
				inScope[sn] = true
			}
		}
	}
	results := make([]report.Store, len(stores))
	var mu sync.Mutex
	masters, done := map[string]int{}, 0
	parallel.Each(stores, c.parallelism(), func(name string) {
		s := storeStatus(ctx, l, hs, name, drift, c.Root != "", opts.Canary, login)
		mu.Lock()
		defer mu.Unlock()
		results[slices.Index(stores, name)] = s
		for _, m := range s.Current {
			masters[l.Slots[m].Host]++
		}
		if done++; opts.Progress != nil {
			opts.Progress(done, len(stores))
		}
	})
	spreads := map[string]layout.Spread{}
	for _, sp := range l.Spreads() {
		spreads[sp.Host] = sp
	}
	for _, hn := range l.HostNames() {
		var slots []string
		for _, sn := range l.SlotsOn(hn) {
			if inScope[sn] || (l.Slots[sn].Role == layout.Spare && scope.Slot(sn)) {
				slots = append(slots, sn)
			}
		}
		if len(slots) == 0 {
			continue
		}
		h := report.Host{Name: hn, Address: l.Hosts[hn].Address, Applied: report.NeverApplied, Slots: slots,
			Masters: masters[hn], Preferred: spreads[hn].Masters, FailoverTo: spreads[hn].To}
		if o := obs[hn]; o != nil && o.Manifest != nil {
			h.Applied = o.Manifest.Commit
		}
		if err := hs.Errs[hn]; err != nil {
			h.Error = err.Error()
			rep.Add(report.Problem{Level: report.Critical, Host: hn, What: "not answering: " + err.Error()})
		}
		rep.Hosts = append(rep.Hosts, h)
	}
	for _, s := range results {
		rep.Stores = append(rep.Stores, s)
		if len(s.Current) == 1 && s.Current[0] != s.Preferred {
			rep.Moved = append(rep.Moved, report.Moved{Store: s.Store, From: s.Preferred, To: s.Current[0]})
		}
	}
	for i := range rep.Stores {
		for _, pr := range storeProblems(&rep.Stores[i]) {
			rep.Add(pr)
			rep.Stores[i].Level = max(rep.Stores[i].Level, pr.Level)
		}
	}
	return rep, nil
}

// storeStatus reads one store: its slots, the current master's
// replication and the last checks recorded on the master's host
// (running a fresh canary first when asked).
func storeStatus(ctx context.Context, l *layout.Layout, hs *Hosts, name string, drift map[string]int, local, sendCanary bool, login canary.Config) report.Store {
	st := l.Stores[name]
	lv := store.Read(ctx, l, st, hs.Conns, hs.Errs)
	s := report.Store{Store: name, Preferred: st.Master, Current: lv.Masters(), Replicas: lv.Replicas(),
		Cyrus: st.Build, Prefix: l.Builds[st.Build].Prefix}
	for _, sn := range st.Slots() {
		s.Slots = append(s.Slots, slotStatus(ctx, l, lv, hs.Conns, sn, drift[sn], local))
	}
	if len(s.Current) != 1 {
		return s
	}
	master := s.Current[0]
	h := hs.Conns[l.Slots[master].Host]
	if h == nil {
		return s
	}
	var peers []string
	for _, sn := range st.Slots() {
		if sn != master {
			peers = append(peers, sn)
		}
	}
	ms := l.Slots[master]
	repl, err := onhost.Replication(ctx, h, hostpath.Of(ms.Name, ms.Meta), peers)
	checks, cerr := onhost.ReadChecks(ctx, h, name)
	if checks == nil || checks.Master != master {
		checks = &report.Checks{Store: name, Master: master}
	}
	if sendCanary {
		checks.Canary = runCanary(ctx, l, st, peers, login)
		cerr = errors.Join(cerr, onhost.WriteChecks(ctx, h, checks))
	}
	for _, peer := range peers {
		r := repl[peer]
		r.Replica = peer
		r.Canary = checks.Canary[peer]
		if err != nil {
			r.Error = err.Error()
		}
		s.Replication = append(s.Replication, r)
	}
	s.Verify = checks.Verify
	if cerr != nil {
		s.Checks = cerr.Error()
	}
	return s
}

// storeProblems says what is wrong with s.
func storeProblems(s *report.Store) []report.Problem {
	var out []report.Problem
	add := func(level report.Level, slot, format string, args ...any) {
		out = append(out, report.Problem{Level: level, Store: s.Store, Slot: slot, What: fmt.Sprintf(format, args...)})
	}
	switch n := len(s.Current); {
	case n == 0:
		add(report.Critical, "", "no master")
	case n > 1:
		add(report.Critical, "", "%d masters: %v", n, s.Current)
	case s.Current[0] != s.Preferred:
		add(report.Warning, "", "running backwards: %s => %s", s.Preferred, s.Current[0])
	}
	for _, sl := range s.Slots {
		switch {
		case sl.Health == report.HealthOK || sl.Health == report.HealthUnknown:
		case sl.Health == healthHostDown:
			// The host's own problem says it.
		default:
			add(report.Critical, sl.Slot, "%s", sl.Health)
		}
		if sl.Error != "" && sl.Health != "host down" {
			add(report.Critical, sl.Slot, "%s", sl.Error)
		}
		if sl.Drift > 0 {
			add(report.Warning, sl.Slot, "%d %s changed by hand (drift)", sl.Drift, plural(sl.Drift, "file", "files"))
		}
	}
	if s.Checks != "" {
		add(report.Warning, "", "the last canary and verify: %s", s.Checks)
	}
	for _, r := range s.Replication {
		if r.Error != "" {
			add(report.Critical, r.Replica, "replication to %s not read: %s", r.Replica, r.Error)
		}
		if r.SyncClient != nil && !*r.SyncClient {
			add(report.Critical, r.Replica, "%s's sync_client for %s is not running: nothing replicates", s.Current[0], r.Replica)
		}
		if r.Backlog > 0 && r.BacklogAge >= BacklogWarning.Seconds() {
			add(report.Warning, r.Replica, "%d replication entries waiting, the oldest for %s", r.Backlog, time.Duration(r.BacklogAge)*time.Second)
		}
		if r.Canary != nil && r.Canary.Error != "" {
			add(report.Critical, r.Replica, "the last canary (%s) did not arrive: %s", r.Canary.SentAt.Format(time.RFC3339), r.Canary.Error)
		}
	}
	if v := s.Verify; v != nil {
		if v.Error != "" {
			add(report.Critical, "", "the last verify (%s) failed: %s", v.At.Format(time.RFC3339), v.Error)
		}
		for _, c := range v.Replicas {
			switch {
			case c.Error != "":
				add(report.Critical, c.Replica, "the last verify (%s) could not read it: %s", v.At.Format(time.RFC3339), c.Error)
			case len(c.Divergent) > 0:
				add(report.Critical, c.Replica, "the last verify (%s) found %d %s differing from the master", v.At.Format(time.RFC3339),
					len(c.Divergent), plural(len(c.Divergent), "mailbox", "mailboxes"))
			}
		}
	}
	return out
}

// slotStatus asks a slot's host whether its master runs and from which
// build, and checks its banner.
func slotStatus(ctx context.Context, l *layout.Layout, lv *store.Live, hosts map[string]transport.Host, sn string, drift int, local bool) report.Slot {
	s := l.Slots[sn]
	ss := report.Slot{Slot: sn, Host: s.Host, Role: string(lv.Roles[sn]), Drift: drift}
	if err := lv.Down[sn]; err != nil {
		ss.Health, ss.Error = healthHostDown, err.Error()
		return ss
	}
	h := hosts[s.Host]
	if local {
		ss.Health = report.HealthUnknown
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
	if err := health.Banner(hctx, slotIMAP(l, sn), sn); err != nil {
		ss.Health = "no banner: " + err.Error()
	} else {
		ss.Health = report.HealthOK
	}
	return ss
}

// runCanary sends a canary through st's floating master address and
// waits for it on each of peers.
func runCanary(ctx context.Context, l *layout.Layout, st *layout.Store, peers []string, login canary.Config) map[string]*report.Canary {
	addrs := make([]string, len(peers))
	for i, p := range peers {
		addrs[i] = slotIMAP(l, p)
	}
	sent := time.Now().UTC()
	took, err := canary.Check(ctx, floatIMAP(st), addrs, login)
	out := map[string]*report.Canary{}
	for i, p := range peers {
		c := &report.Canary{SentAt: sent}
		if d, ok := took[addrs[i]]; ok {
			c.Seconds = d.Seconds()
		} else if err != nil {
			c.Error = err.Error()
			var na *canary.NotArrivedError
			for _, e := range unjoin(err) {
				if errors.As(e, &na) && na.Replica == addrs[i] {
					c.Error = fmt.Sprintf("not there %s after it was sent", na.Waited.Round(time.Millisecond))
				}
			}
		}
		out[p] = c
	}
	return out
}

// unjoin lists the errors errors.Join put together (err itself otherwise).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// canaryLogin is how canaries and verify log in: as the layout's
// replication user, an admin.
func canaryLogin(l *layout.Layout, c Config) (canary.Config, error) {
	values, err := secret.Resolve(l, []string{l.Replication.Password}, c.Getenv)
	if err != nil {
		return canary.Config{}, fmt.Errorf("canaries and verify log in as %s: %w", l.Replication.Authname, err)
	}
	return canary.Config{User: l.Replication.Authname, Password: values[l.Replication.Password], Timeout: time.Minute}, nil
}

// slotIMAP is the IMAP address of slot sn on its host.
func slotIMAP(l *layout.Layout, sn string) string {
	s := l.Slots[sn]
	return net.JoinHostPort(l.Hosts[s.Host].Address, strconv.Itoa(s.IMAPPort))
}

// floatIMAP is the IMAP address that follows st's current master.
func floatIMAP(st *layout.Store) string {
	return net.JoinHostPort(st.IP.Master, strconv.Itoa(render.FloatingPort))
}
