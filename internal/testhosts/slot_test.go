package testhosts

import (
	"net/netip"
	"os"
	"testing"
)

func TestRouteDest(t *testing.T) {
	for line, want := range map[string]string{
		"10.200.3.0/24 dev cyrth3 proto kernel scope link src 10.200.3.1": "10.200.3.0/24",
		"unreachable 10.200.3.0/24 metric 9999":                           "10.200.3.0/24",
		"local 10.200.4.7 dev lo table local proto kernel scope host":     "10.200.4.7/32",
		"10.0.0.0/8 via 192.0.2.1 dev eth0":                               "10.0.0.0/8",
	} {
		p, ok := routeDest(line)
		if !ok || p.String() != want {
			t.Errorf("routeDest(%q) = %v, %v; want %s", line, p, ok, want)
		}
	}
	for _, line := range []string{"default via 192.0.2.1 dev eth0", "", "unreachable"} {
		if p, ok := routeDest(line); ok {
			t.Errorf("routeDest(%q) = %v, want none", line, p)
		}
	}
}

func TestConflict(t *testing.T) {
	s := &netSnapshot{
		links:  []string{"lo", "eth0", "cyrth5", "cyrth6-2"},
		addrs:  []netip.Prefix{netip.MustParsePrefix("10.200.1.1/24")},
		routes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.200.2.128/25")},
		netns:  []string{"cyrth7-imap3", "cyrth80-x"},
	}
	for slot, busy := range map[int]bool{0: false, 1: true, 2: true, 3: false, 5: true, 6: true, 7: true, 8: false} {
		if got := s.conflict(slot); (got != "") != busy {
			t.Errorf("conflict(%d) = %q, want busy %v", slot, got, busy)
		}
	}
}

// TestStaleFleetSwept makes a fleet look like that of a test binary that
// died (its owner's start time no longer matches) and checks that the next
// Start tears it down.
func TestStaleFleetSwept(t *testing.T) {
	Require(t)
	f, err := Start(Options{Logf: t.Logf}, "stale")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("closing the stale fleet: %v", f.Close())
		}
	})
	init, err := f.Host("stale").running()
	if err != nil {
		t.Fatal(err)
	}
	lock, err := lockSlot(f.slot, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOwner(lock, owner{Dir: f.Dir, PID: os.Getpid(), Start: 1}); err != nil {
		t.Fatal(err)
	}
	if err := lock.Close(); err != nil {
		t.Fatal(err)
	}

	g, err := Start(Options{Logf: t.Logf}, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if !init.gone() {
		t.Errorf("PID 1 %d of the stale fleet still runs", init.pid)
	}
	if _, err := os.Stat("/run/netns/" + f.Host("stale").netns()); !os.IsNotExist(err) {
		t.Errorf("network namespace of the stale fleet: %v", err)
	}
	if _, err := os.Stat(f.Dir); !os.IsNotExist(err) {
		t.Errorf("directory of the stale fleet: %v", err)
	}
}
