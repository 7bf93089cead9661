// Package reporttest builds a fixed status report of the example fleet
// (the layout at the top of the repository) for the tests of the views
// that draw reports: OpenMetrics and the fleet page.
package reporttest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/report"
)

// Time is when the example report was read.
var Time = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)

// Example is the status of the example fleet at Time with everything
// well but for four things: store13 runs backwards (slot405 => slot703),
// slot801 is not running, slot502 has a file changed by hand, and
// slot504 has 42 entries waiting for slot901 for ten minutes, whose last
// canary did not arrive.
func Example(tb testing.TB) *report.Status {
	tb.Helper()
	l, err := layout.Load(filepath.Join(root(tb), "layout"))
	if err != nil {
		tb.Fatal(err)
	}
	yes := true
	st := &report.Status{Time: Time, LayoutHead: "4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2"}
	current := map[string]string{"store13": "slot703"}
	masters := map[string]int{}
	for _, name := range l.StoreNames() {
		ls := l.Stores[name]
		master := ls.Master
		if m, ok := current[name]; ok {
			master = m
		}
		masters[l.Slots[master].Host]++
		s := report.Store{Store: name, Preferred: ls.Master, Current: []string{master},
			Cyrus: ls.Build, Prefix: l.Builds[ls.Build].Prefix}
		for _, sn := range ls.Slots() {
			role := layout.Replica
			if sn == master {
				role = layout.Master
			} else {
				s.Replicas = append(s.Replicas, sn)
				s.Replication = append(s.Replication, report.Replication{Replica: sn, SyncClient: &yes,
					Canary: &report.Canary{SentAt: Time.Add(-time.Minute), Seconds: 0.124}})
			}
			s.Slots = append(s.Slots, report.Slot{Slot: sn, Host: l.Slots[sn].Host, Role: string(role),
				Running: s.Prefix + "/bin/master", Health: report.HealthOK})
		}
		s.Verify = &report.Verify{At: Time.Add(-time.Hour), Master: master, Mailboxes: 12}
		for _, r := range s.Replicas {
			s.Verify.Replicas = append(s.Verify.Replicas, report.Comparison{Replica: r})
		}
		st.Stores = append(st.Stores, s)
	}
	for i := range st.Stores {
		s := &st.Stores[i]
		for j := range s.Slots {
			sl := &s.Slots[j]
			switch sl.Slot {
			case "slot801":
				sl.Running, sl.Health = "", "not running"
				st.Add(report.Problem{Level: report.Critical, Store: s.Store, Slot: sl.Slot, What: "not running"})
				s.Level = report.Critical
			case "slot502":
				sl.Drift = 1
				st.Add(report.Problem{Level: report.Warning, Store: s.Store, Slot: sl.Slot, What: "1 file changed by hand (drift)"})
				s.Level = max(s.Level, report.Warning)
			}
		}
		for j := range s.Replication {
			r := &s.Replication[j]
			if r.Replica == "slot901" {
				r.Backlog, r.BacklogAge = 42, 600
				r.Canary = &report.Canary{SentAt: Time.Add(-time.Minute), Error: "not there 1m0s after it was sent"}
				st.Add(report.Problem{Level: report.Warning, Store: s.Store, Slot: r.Replica, What: "42 replication entries waiting, the oldest for 10m0s"})
				st.Add(report.Problem{Level: report.Critical, Store: s.Store, Slot: r.Replica, What: "the last canary did not arrive: not there 1m0s after it was sent"})
				s.Level = report.Critical
			}
		}
		if s.Store == "store13" {
			st.Moved = append(st.Moved, report.Moved{Store: s.Store, From: s.Preferred, To: s.Current[0]})
			st.Add(report.Problem{Level: report.Warning, Store: s.Store, What: "running backwards: slot405 => slot703"})
			s.Level = max(s.Level, report.Warning)
		}
	}
	for _, sp := range l.Spreads() {
		st.Hosts = append(st.Hosts, report.Host{Name: sp.Host, Address: l.Hosts[sp.Host].Address, Applied: st.LayoutHead,
			Slots: l.SlotsOn(sp.Host), Masters: masters[sp.Host], Preferred: sp.Masters, FailoverTo: sp.To})
	}
	return st
}

// root is the top of the repository: the directory above the test's
// that holds go.mod.
func root(tb testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
