package plan

import (
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
)

// BenchmarkBuild computes plans of generated fleets of 100, 1,000 and
// 10,000 slots from observed state given as values (no I/O): "nochange"
// against hosts that hold exactly the rendered tree, "fromempty" against
// hosts that hold nothing yet (every file created, every slot started).
// Loading and rendering are not timed.
func BenchmarkBuild(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		l, err := layout.Load(fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost))
		if err != nil {
			b.Fatal(err)
		}
		tree := render.Render(l)
		sc, err := NewScope(l, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name     string
			observed map[string]*state.Host
			changes  bool
		}{
			{"nochange", applied(tree), false},
			{"fromempty", empty(tree), true},
		} {
			b.Run(c.name+"/"+sz.Name, func(b *testing.B) {
				b.ReportAllocs()
				var p *Plan
				for b.Loop() {
					p = Build(Input{Layout: l, Tree: tree, Observed: c.observed, Scope: sc})
				}
				if p.HasChanges() != c.changes || len(p.Problems) > 0 {
					b.Fatalf("plan has changes %v (want %v), problems %v: %s", p.HasChanges(), c.changes, p.Problems, p.Summary.Line())
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
		}
	}
}
