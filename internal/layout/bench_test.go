package layout

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// writeFleet writes a layout of hosts hosts with slotsPerHost slots each
// (slotsPerHost even, at most 98) to a new directory. The first half of
// each host's partitions are masters; the replica of master partition p
// on host h is partition slotsPerHost/2+p on the host p positions further
// round the ring, so every store spans two hosts and a host's masters
// fail over to many hosts.
func writeFleet(tb testing.TB, hosts, slotsPerHost int) string {
	tb.Helper()
	if hosts < 2 || slotsPerHost < 2 || slotsPerHost%2 != 0 || slotsPerHost > 98 {
		tb.Fatalf("writeFleet(%d, %d): want at least 2 hosts and an even number of slots up to 98", hosts, slotsPerHost)
	}
	var h strings.Builder
	h.WriteString("package layout\n\n")
	h.WriteString("domain: \"internal\"\n")
	h.WriteString("cyrus: {\n\t\"3.6.1\": prefix: \"/usr/lib/cyrus\"\n\t\"3.6.1-fm1\": prefix: \"/usr/cyrusnew\"\n}\n")
	h.WriteString("defaultCyrus: \"3.6.1\"\n")
	h.WriteString("imapd: {admins: \"cyrus\", allowplaintext: false, sasl_pwcheck_method: \"auxprop\"}\n")
	h.WriteString("hosts: {\n")
	for i := 1; i <= hosts; i++ {
		fmt.Fprintf(&h, "\timap%d: {number: %d, address: \"10.0.%d.%d\"}\n", i, i, i/256, i%256)
	}
	h.WriteString("}\n")

	var s strings.Builder
	s.WriteString("package layout\n\nstores: {\n")
	n := 0
	half := slotsPerHost / 2
	for i := 1; i <= hosts; i++ {
		for p := 1; p <= half; p++ {
			r := (i-1+1+(p-1)%(hosts-1))%hosts + 1 // never i itself
			n++
			pin := ""
			if n%10 == 0 {
				pin = ` cyrus: "3.6.1-fm1",`
			}
			fmt.Fprintf(&s, "\tstore%d: {master: \"slot%d%02d\", replicas: [\"slot%d%02d\"],%s ip: {master: \"10.1.%d.%d\", replica: \"10.2.%d.%d\"}, imapd: quota_db: \"twoskip\"}\n",
				n, i, p, r, half+p, pin, n/256, n%256, n/256, n%256)
		}
	}
	s.WriteString("}\n")

	dir := tb.TempDir()
	writeFile(tb, filepath.Join(dir, "fleet.cue"), []byte(h.String()))
	writeFile(tb, filepath.Join(dir, "stores.cue"), []byte(s.String()))
	return dir
}

var fleets = []struct {
	name                string
	hosts, slotsPerHost int
}{
	{"100slots", 10, 10},
	{"1000slots", 20, 50},
	{"10000slots", 125, 80},
}

// TestGeneratedFleet checks that the benchmarks load valid layouts.
func TestGeneratedFleet(t *testing.T) {
	for _, f := range fleets[:2] {
		t.Run(f.name, func(t *testing.T) {
			l, err := Load(writeFleet(t, f.hosts, f.slotsPerHost))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(l.Slots), f.hosts*f.slotsPerHost; got != want {
				t.Errorf("%d slots, want %d", got, want)
			}
			if got, want := len(l.Stores), f.hosts*f.slotsPerHost/2; got != want {
				t.Errorf("%d stores, want %d", got, want)
			}
			for _, sp := range l.Spreads() {
				if sp.Worst > (sp.Masters+f.hosts-2)/(f.hosts-1) {
					t.Errorf("host %s: %d of %d masters go to %s: the generator should spread them", sp.Host, sp.Worst, sp.Masters, sp.WorstTo)
				}
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, f := range fleets {
		b.Run(f.name, func(b *testing.B) {
			dir := writeFleet(b, f.hosts, f.slotsPerHost)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
