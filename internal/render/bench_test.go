package render

import (
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/layout"
)

// BenchmarkRender renders generated fleets of 100, 1,000 and 10,000
// slots in memory (no files written); loading is not timed.
func BenchmarkRender(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		b.Run(sz.Name, func(b *testing.B) {
			l, err := layout.Load(fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var files int
			for b.Loop() {
				t := Render(l)
				files = 0
				for _, h := range t.Hosts {
					files += len(h.Files)
				}
			}
			if files != 5*sz.Slots() {
				b.Fatalf("%d files rendered, want 5 per slot (%d)", files, 5*sz.Slots())
			}
			b.ReportMetric(float64(sz.Slots()), "slots")
		})
	}
}

// BenchmarkLoadAndRender is the first half of every command that reads
// hosts: load (validate) and render a generated fleet, both timed.
func BenchmarkLoadAndRender(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		b.Run(sz.Name, func(b *testing.B) {
			dir := fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost)
			b.ReportAllocs()
			for b.Loop() {
				l, err := layout.Load(dir)
				if err != nil {
					b.Fatal(err)
				}
				if t := Render(l); len(t.Hosts) != sz.Hosts {
					b.Fatalf("%d hosts rendered, want %d", len(t.Hosts), sz.Hosts)
				}
			}
			b.ReportMetric(float64(sz.Slots()), "slots")
		})
	}
}
