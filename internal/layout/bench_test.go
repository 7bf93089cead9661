package layout

import (
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
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
