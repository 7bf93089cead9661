package operation

import (
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/simulate"
)

func example(t *testing.T) *layout.Layout {
	t.Helper()
	l, err := layout.Load("../../layout")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// preferred is every store on its preferred master, every host up.
func preferred(l *layout.Layout) Live {
	lv := Live{Roles: map[string]layout.Role{}, Down: map[string]bool{}}
	for _, name := range l.StoreNames() {
		for _, sn := range l.Stores[name].Slots() {
			lv.Roles[sn] = l.Slots[sn].Role
		}
	}
	return lv
}

func says(steps []*Step) string {
	var out []string
	for _, s := range steps {
		out = append(out, string(s.Do)+" "+s.Slot)
	}
	return strings.Join(out, ", ")
}

func TestFailover(t *testing.T) {
	l := example(t)
	st := l.Stores["store23"]
	tests := []struct {
		name  string
		live  func(Live)
		to    string
		force bool
		want  string
		err   string
	}{
		{"planned", func(Live) {}, "", false,
			"stop slot608, drain slot608, record slot308, record slot608, restart slot308, start slot608, resume slot308", ""},
		{"back to the preferred master", func(lv Live) { lv.Roles["slot608"], lv.Roles["slot308"] = layout.Replica, layout.Master }, "", false,
			"stop slot308, drain slot308, record slot608, record slot308, restart slot608, start slot308, resume slot608", ""},
		{"the master's host down, refused", func(lv Live) { delete(lv.Roles, "slot608"); lv.Down["slot608"] = true }, "", false,
			"", "the host of slot608 does not answer; if it is down for good, run again with --force"},
		{"the master's host down, forced", func(lv Live) { delete(lv.Roles, "slot608"); lv.Down["slot608"] = true }, "", true,
			"record slot308, restart slot308", ""},
		{"a host back after a forced failover", func(lv Live) { lv.Roles["slot308"] = layout.Master }, "slot308", false,
			"stop slot608, record slot608, start slot608, resume slot308", ""},
		{"already the master", func(Live) {}, "slot608", false, "", ""},
		{"not a slot of the store", func(Live) {}, "slot701", false, "", "slot slot701 is not in store store23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lv := preferred(l)
			tt.live(lv)
			steps, _, err := Failover(l, st, lv, tt.to, tt.force)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v; want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := says(steps); got != tt.want {
				t.Errorf("steps %q; want %q", got, tt.want)
			}
		})
	}
}

// TestDrainAgreesWithSimulate: for every host of generated fleets, the
// masters a drain promotes are exactly where simulate --down puts them,
// and a drain never promotes a slot on the drained host.
func TestDrainAgreesWithSimulate(t *testing.T) {
	for _, sz := range []fleetgen.Size{{Name: "3x8", Hosts: 3, SlotsPerHost: 8}, {Name: "5x10", Hosts: 5, SlotsPerHost: 10}, {Name: "7x4", Hosts: 7, SlotsPerHost: 4}} {
		t.Run(sz.Name, func(t *testing.T) {
			l, err := layout.Load(fleetgen.TempDir(t, sz.Hosts, sz.SlotsPerHost))
			if err != nil {
				t.Fatal(err)
			}
			lv := preferred(l)
			for _, host := range l.HostNames() {
				steps, err := Drain(l, lv, host)
				if err != nil {
					t.Fatalf("drain %s: %v", host, err)
				}
				promoted := map[string]string{}
				for _, s := range steps {
					if s.Do == Restart {
						promoted[s.Store] = s.Slot
						if s.Host == host {
							t.Errorf("drain %s promotes %s on the drained host", host, s.Slot)
						}
					}
				}
				moves := simulate.Down(l, nil, []string{host}).Stores
				if len(moves) != len(promoted) {
					t.Errorf("drain %s moves %d stores, simulate %d", host, len(promoted), len(moves))
				}
				for _, mv := range moves {
					if promoted[mv.Store] != mv.ToSlot {
						t.Errorf("drain %s: %s goes to %q; simulate says %q", host, mv.Store, promoted[mv.Store], mv.ToSlot)
					}
				}
				for i, s := range steps {
					if s.N != i+1 {
						t.Fatalf("drain %s: step %d numbered %d", host, i+1, s.N)
					}
				}
			}
		})
	}
}

// TestFailback: only stores running backwards move, to their preferred
// masters; with a host, only those whose preferred master is there.
func TestFailback(t *testing.T) {
	l := example(t)
	lv := preferred(l)
	lv.Roles["slot608"], lv.Roles["slot308"] = layout.Replica, layout.Master
	steps, err := Failback(l, lv, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := says(steps); got != "stop slot308, drain slot308, record slot608, record slot308, restart slot608, start slot308, resume slot608" {
		t.Errorf("failback --all: %s", got)
	}
	if steps, _ := Failback(l, lv, "imap3"); len(steps) != 0 {
		t.Errorf("failback imap3 moves %s; no store prefers a master there that runs backwards", says(steps))
	}
}

// TestUpgrade: a rolling upgrade never has both slots down: the replica
// first, a switchover to it, the old master upgraded as replica, then
// back; a downgrade is refused.
func TestUpgrade(t *testing.T) {
	l := example(t)
	st := l.Stores["store23"]
	old, pinned := l.Builds["3.6.1"], l.Builds["3.6.1-fm1"]
	steps, notes, err := Upgrade(l, st, preferred(l), old, pinned)
	if err != nil {
		t.Fatal(err)
	}
	want := "apply slot308, stop slot608, drain slot608, record slot308, record slot608, restart slot308, apply slot608, resume slot308, " +
		"stop slot308, drain slot308, record slot608, record slot308, restart slot608, start slot308, resume slot608"
	if got := says(steps); got != want {
		t.Errorf("steps\n  %s\nwant\n  %s", got, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "know the same imapd.conf options") {
		t.Errorf("notes %q", notes)
	}
	// At no point are both slots stopped: between a stop of one and its
	// start (restart or apply) the other is up.
	up := map[string]bool{"slot608": true, "slot308": true}
	for _, s := range steps {
		switch s.Do {
		case Stop:
			up[s.Slot] = false
		case Restart, Start, Apply:
			up[s.Slot] = true
		}
		if !up["slot608"] && !up["slot308"] {
			t.Fatalf("after %q both slots are down", s.Says)
		}
	}
	newer := &layout.Build{Name: "3.8.0", Prefix: "/usr/cyrus38", Version: "3.8.0"}
	if _, _, err := Upgrade(l, st, preferred(l), newer, old); err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("a downgrade: %v", err)
	}
	if !versionLess("3.6.1", "3.10.0") || versionLess("3.10.0", "3.6.1") {
		t.Error("versions compare as strings")
	}
}

// TestMove: create before destroy; refused while the layout still lists
// the old slot, or when the old slot is the master.
func TestMove(t *testing.T) {
	l := example(t)
	lv := preferred(l)
	lv.Roles["slot308"] = layout.Replica
	st := *l.Stores["store23"]
	st.Replicas = []string{"slot508"}
	l.Stores["store23"] = &st
	l.Slots["slot508"] = &layout.Slot{Name: "slot508", Host: "imap5", Partition: 8, Meta: "/mnt/meta8", Data: "/mnt/data8", Store: "store23", Role: layout.Replica}
	delete(l.Slots, "slot308")
	steps, notes, err := Move(l, &st, lv, "slot308", "slot508")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := says(steps), "apply slot508, apply slot608, fullsync slot608, apply slot608, apply slot308"; got != want {
		t.Errorf("steps %q; want %q", got, want)
	}
	if steps[1].Peer != "slot308" || steps[3].Peer != "" || steps[4].Host != "imap3" {
		t.Errorf("the master replicates to both (peer %q), then to the new one only (peer %q); the old one is retired on imap3 (%q)", steps[1].Peer, steps[3].Peer, steps[4].Host)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "slot308's mail data stays on imap3 in /mnt/meta8 and /mnt/data8") {
		t.Errorf("notes %q", notes)
	}
	if _, _, err := Move(l, &st, lv, "slot608", "slot508"); err == nil || !strings.Contains(err.Error(), "still lists slot608") {
		t.Errorf("moving a slot the layout still lists: %v", err)
	}
	lv.Roles["slot308"] = layout.Master
	if _, _, err := Move(l, &st, lv, "slot308", "slot508"); err == nil || !strings.Contains(err.Error(), "fail it over first") {
		t.Errorf("moving the master: %v", err)
	}
}
