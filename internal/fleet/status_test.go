package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/report"
)

func TestStoreProblems(t *testing.T) {
	yes, no := true, false
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ok := func() report.Store {
		return report.Store{Store: "store23", Preferred: "slot608", Current: []string{"slot608"}, Replicas: []string{"slot308"},
			Slots: []report.Slot{{Slot: "slot608", Health: report.HealthOK}, {Slot: "slot308", Health: report.HealthOK}},
			Replication: []report.Replication{{Replica: "slot308", SyncClient: &yes, Backlog: 3, BacklogAge: 10,
				Canary: &report.Canary{SentAt: at, Seconds: 0.1}}},
			Verify: &report.Verify{At: at, Replicas: []report.Comparison{{Replica: "slot308", Divergent: []report.Mailbox{}}}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*report.Store)
		level  report.Level
		what   string
	}{
		{"all well (a young backlog is replication at work)", func(*report.Store) {}, report.OK, ""},
		{"--root", func(s *report.Store) {
			for i := range s.Slots {
				s.Slots[i].Health = report.HealthUnknown
			}
			s.Replication[0].SyncClient = nil
		}, report.OK, ""},
		{"moved", func(s *report.Store) { s.Current = []string{"slot308"} }, report.Warning, "running backwards: slot608 => slot308"},
		{"drift", func(s *report.Store) { s.Slots[1].Drift = 2 }, report.Warning, "slot308: 2 files changed by hand (drift)"},
		{"old backlog", func(s *report.Store) { s.Replication[0].BacklogAge = 301 }, report.Warning, "3 replication entries waiting, the oldest for 5m1s"},
		{"checks unreadable", func(s *report.Store) { s.Checks = "bad JSON" }, report.Warning, "the last canary and verify: bad JSON"},
		{"no master", func(s *report.Store) { s.Current = nil }, report.Critical, "no master"},
		{"two masters", func(s *report.Store) { s.Current = []string{"slot608", "slot308"} }, report.Critical, "2 masters"},
		{"slot down", func(s *report.Store) { s.Slots[0].Health = "not running" }, report.Critical, "slot608: not running"},
		{"host down: said once, by the host", func(s *report.Store) { s.Slots[1].Health, s.Slots[1].Error = healthHostDown, "refused" }, report.OK, ""},
		{"sync_client", func(s *report.Store) { s.Replication[0].SyncClient = &no }, report.Critical, "slot608's sync_client for slot308 is not running"},
		{"replication unread", func(s *report.Store) { s.Replication[0].Error = "timeout" }, report.Critical, "replication to slot308 not read: timeout"},
		{"canary", func(s *report.Store) { s.Replication[0].Canary.Error = "not there" }, report.Critical, "did not arrive: not there"},
		{"verify differs", func(s *report.Store) {
			s.Verify.Replicas[0].Divergent = []report.Mailbox{{Name: "user/brong"}}
		}, report.Critical, "found 1 mailbox differing from the master"},
		{"verify failed", func(s *report.Store) { s.Verify.Replicas[0].Error = "refused" }, report.Critical, "could not read it: refused"},
	} {
		s := ok()
		tc.change(&s)
		probs := storeProblems(&s)
		level := report.OK
		var whats []string
		for _, p := range probs {
			level = max(level, p.Level)
			whats = append(whats, p.String())
		}
		if level != tc.level || (tc.what == "") != (len(probs) == 0) || !strings.Contains(strings.Join(whats, "\n"), tc.what) {
			t.Errorf("%s: %s %q, want %s with %q", tc.name, level, whats, tc.level, tc.what)
		}
	}
}
