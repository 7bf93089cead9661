package fleetgen_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/schema"
)

// TestLoads checks that generated layouts are valid under the schema,
// have the slots and stores they should, and spread each host's masters
// as evenly as the fleet allows.
func TestLoads(t *testing.T) {
	sizes := []fleetgen.Size{{"2x2", 2, 2}, {"3x8", 3, 8}, {"32x8", 32, 8}}
	sizes = append(sizes, fleetgen.Sizes[:2]...)
	for _, sz := range sizes {
		t.Run(sz.Name, func(t *testing.T) {
			l, err := layout.Load(fleetgen.TempDir(t, sz.Hosts, sz.SlotsPerHost))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(l.Hosts), sz.Hosts; got != want {
				t.Errorf("%d hosts, want %d", got, want)
			}
			if got, want := len(l.Slots), sz.Slots(); got != want {
				t.Errorf("%d slots, want %d", got, want)
			}
			if got, want := len(l.Stores), sz.Slots()/2; got != want {
				t.Errorf("%d stores, want %d", got, want)
			}
			limit := fleetgen.MaxPerHost(sz.Hosts, sz.SlotsPerHost)
			if l.Failover.MaxPerHost != limit {
				t.Errorf("failover.maxPerHost %d, want %d", l.Failover.MaxPerHost, limit)
			}
			spreads := l.Spreads()
			if len(spreads) != sz.Hosts {
				t.Errorf("%d hosts with masters, want %d", len(spreads), sz.Hosts)
			}
			for _, sp := range spreads {
				if sp.Masters != sz.SlotsPerHost/2 {
					t.Errorf("host %s has %d masters, want %d", sp.Host, sp.Masters, sz.SlotsPerHost/2)
				}
				if sp.Worst > limit {
					t.Errorf("host %s: %d of %d masters go to %s, over the limit %d", sp.Host, sp.Worst, sp.Masters, sp.WorstTo, limit)
				}
			}
			perHost := map[string]int{}
			for _, s := range l.Slots {
				perHost[s.Host]++
			}
			for h, n := range perHost {
				if n != sz.SlotsPerHost {
					t.Errorf("host %s has %d slots, want %d", h, n, sz.SlotsPerHost)
				}
			}
		})
	}
}

// TestNamesAndAddresses checks that given host names and addresses end
// up in the layout, as the real-sshd benchmarks need.
func TestNamesAndAddresses(t *testing.T) {
	o := fleetgen.Options{Hosts: 3, SlotsPerHost: 4, Names: []string{"alpha", "beta", "gamma"},
		Addresses: []string{"10.200.9.11", "10.200.9.12", "10.200.9.13"}, Prefix: "/opt/c", PinnedPrefix: "/opt/c"}
	dir := t.TempDir()
	if err := fleetgen.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	l, err := layout.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range o.Names {
		h := l.Hosts[n]
		if h == nil {
			t.Fatalf("no host %s in %v", n, l.HostNames())
		}
		if h.Number != i+1 || h.Address != o.Addresses[i] {
			t.Errorf("host %s: number %d address %s, want %d %s", n, h.Number, h.Address, i+1, o.Addresses[i])
		}
		if got := len(l.SlotsOn(n)); got != 4 {
			t.Errorf("host %s: %d slots, want 4", n, got)
		}
	}
	for _, b := range l.Builds {
		if b.Prefix != "/opt/c" {
			t.Errorf("build %s at %s, want /opt/c", b.Name, b.Prefix)
		}
	}
}

func TestBadSizes(t *testing.T) {
	for _, o := range []fleetgen.Options{
		{Hosts: 1, SlotsPerHost: 2},
		{Hosts: 2, SlotsPerHost: 3},
		{Hosts: 2, SlotsPerHost: 100},
		{Hosts: 2, SlotsPerHost: 2, Names: []string{"a"}},
		{Hosts: 2, SlotsPerHost: 2, Addresses: []string{"10.0.0.1"}},
	} {
		t.Run(fmt.Sprintf("%d-%d", o.Hosts, o.SlotsPerHost), func(t *testing.T) {
			if _, err := fleetgen.Generate(o); err == nil {
				t.Errorf("Generate(%+v) succeeded, want an error", o)
			}
		})
	}
}

// Floor passes a generated fleet and fails one the schema refuses.
func TestFloor(t *testing.T) {
	src, err := schema.FS.ReadFile(schema.File)
	if err != nil {
		t.Fatal(err)
	}
	dir := fleetgen.TempDir(t, 3, 4)
	if err := fleetgen.Floor(dir, src); err != nil {
		t.Fatalf("a generated fleet: %v", err)
	}
	bad := filepath.Join(dir, "zz_bad.cue")
	if err := os.WriteFile(bad, []byte("package layout\n\ndomain: 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fleetgen.Floor(dir, src); err == nil {
		t.Error("a layout whose domain is a number passed the floor")
	}
}
