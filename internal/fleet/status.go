package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// StatusReport is what status finds: per store its masters, replicas,
// builds, health, drift and backlog, the stores running backwards, and
// the hosts that did not answer. Its JSON is status --json.
type StatusReport struct {
	Stores     []StoreStatus     `json:"stores"`
	Moved      []Moved           `json:"moved"`
	Down       map[string]string `json:"hostsDown,omitempty"`
	Attention  bool              `json:"attention"`
	LayoutHead string            `json:"layoutCommit,omitempty"`
	Applied    map[string]string `json:"appliedCommit,omitempty"` // host -> commit of its last apply, "" outside git, "never" before the first
}

// NeverApplied is the applied commit of a host cyrplan never applied to.
const NeverApplied = "never"

// Moved is a store running backwards.
type Moved struct {
	Store string `json:"store"`
	From  string `json:"preferredMaster"`
	To    string `json:"currentMaster"`
}

// StoreStatus is one store.
type StoreStatus struct {
	Store     string       `json:"store"`
	Preferred string       `json:"preferredMaster"`
	Current   []string     `json:"currentMasters"`
	Replicas  []string     `json:"replicas"`
	Cyrus     string       `json:"cyrus"`
	Slots     []SlotStatus `json:"slots"`
}

// SlotStatus is one slot of a store.
type SlotStatus struct {
	Slot    string `json:"slot"`
	Host    string `json:"host"`
	Role    string `json:"role,omitempty"`
	Running string `json:"running,omitempty"` // the master's executable
	Health  string `json:"health"`            // "ok" or the problem
	Drift   int    `json:"drift"`             // files changed by hand
	Backlog int    `json:"backlog"`           // lines in its sync logs (as master)
	Error   string `json:"error,omitempty"`
}

// Status reads every host of c in parallel and reports on every store
// with a slot in scope.
func Status(ctx context.Context, c Config) (*StatusReport, error) {
	pl, err := Plan(ctx, c, WithoutSecrets)
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
	rep := &StatusReport{Down: map[string]string{}, Applied: map[string]string{}, LayoutHead: p.Commit}
	for h, err := range hs.Errs {
		rep.Down[h] = err.Error()
		rep.Attention = true
	}
	for h, o := range obs {
		rep.Applied[h] = NeverApplied
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
	results := map[string]StoreStatus{}
	movedTo := map[string]string{}
	parallel.Each(stores, c.parallelism(), func(name string) {
		st := l.Stores[name]
		lv := store.Read(ctx, l, st, hs.Conns, hs.Errs)
		ss := StoreStatus{Store: name, Preferred: st.Master, Current: lv.Masters(), Replicas: lv.Replicas(), Cyrus: st.Build}
		bad := len(ss.Current) != 1
		for _, sn := range st.Slots() {
			s := slotStatusOf(ctx, l, lv, hs.Conns, sn, drift[sn], c.Root != "")
			if (s.Health != "ok" && c.Root == "") || s.Drift > 0 || s.Error != "" {
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
			rep.Moved = append(rep.Moved, Moved{Store: name, From: l.Stores[name].Master, To: to})
		}
	}
	return rep, nil
}

// SlotStatusOf asks a slot's host whether its master runs and from which
// build, checks its banner, and counts its replication backlog.
func slotStatusOf(ctx context.Context, l *layout.Layout, lv *store.Live, hosts map[string]transport.Host, sn string, drift int, local bool) SlotStatus {
	s := l.Slots[sn]
	ss := SlotStatus{Slot: sn, Host: s.Host, Role: string(lv.Roles[sn]), Drift: drift}
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
				n, err := onhost.CountLines(ctx, h, hostpath.Of(s.Name, s.Meta).SyncLogDir(peer)+"/"+log)
				if err == nil {
					ss.Backlog += n
				}
			}
		}
	}
	return ss
}
