package layout

import (
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/schema"
)

// BenchmarkLoad loads (parses, unifies with the schema, checks and
// decodes) generated fleets of 100, 1,000 and 10,000 slots: what
// cyrplan validate does. The fleets themselves are tested in fleetgen.
func BenchmarkLoad(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		b.Run(sz.Name, func(b *testing.B) {
			dir := fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(dir); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(sz.Slots()), "slots")
		})
	}
}

// BenchmarkFloor is what CUE alone costs on the fleets of BenchmarkLoad:
// load the package, unify it with the schema and validate it, nothing
// else. Load's time over the floor's is cyrplan's own cost.
func BenchmarkFloor(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		b.Run(sz.Name, func(b *testing.B) {
			dir := fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost)
			b.ReportAllocs()
			for b.Loop() {
				floor(b, dir)
			}
			b.ReportMetric(float64(sz.Slots()), "slots")
		})
	}
}

// BenchmarkLoadVsFloor runs Load and the floor by turns on the same
// fleet and reports the time of each and load/floor, their ratio: on a
// busy machine, that of runs side by side is steadier than the ratio of
// two benchmarks.
func BenchmarkLoadVsFloor(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		b.Run(sz.Name, func(b *testing.B) {
			dir := fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost)
			var inLoad, inFloor time.Duration
			n := 0
			for b.Loop() {
				for i := range 2 {
					start := time.Now()
					if (n+i)%2 == 0 {
						if _, err := Load(dir); err != nil {
							b.Fatal(err)
						}
						inLoad += time.Since(start)
					} else {
						floor(b, dir)
						inFloor += time.Since(start)
					}
				}
				n++
			}
			b.ReportMetric(float64(inLoad.Nanoseconds())/float64(n), "load-ns/op")
			b.ReportMetric(float64(inFloor.Nanoseconds())/float64(n), "floor-ns/op")
			b.ReportMetric(float64(inLoad)/float64(inFloor), "load/floor")
		})
	}
}

// floor loads the layout in dir, unifies it with the schema and
// validates it (fleetgen.Floor).
func floor(b *testing.B, dir string) {
	src, err := schema.FS.ReadFile(schema.File)
	if err != nil {
		b.Fatal(err)
	}
	if err := fleetgen.Floor(dir, src); err != nil {
		b.Fatal(err)
	}
}
