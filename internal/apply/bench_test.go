package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
)

// BenchmarkExecute executes plans of generated fleets with the local
// transport (a directory per host; no command runs):
//   - "noop": the plan of hosts that already hold the rendered tree, so
//     the apply has nothing to do;
//   - "create": the first apply into empty hosts, which writes every
//     directory, file, role and manifest (with fsync, as apply does);
//     at 100 and 1,000 slots only.
//
// Planning is not timed; see plan's and e2e's benchmarks for that.
func BenchmarkExecute(b *testing.B) {
	for _, sz := range fleetgen.Sizes {
		l, err := layout.Load(fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost))
		if err != nil {
			b.Fatal(err)
		}
		tree := render.Render(l)
		sc, err := plan.NewScope(l, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		values := secret.Values{"replication": "bench-secret"}
		observed := func(empty bool) map[string]*state.Host {
			out := map[string]*state.Host{}
			for _, hn := range tree.HostNames() {
				out[hn] = state.FromTree(tree, hn)
				out[hn].Manifest.ApplyID = "a0"
				if empty {
					out[hn] = &state.Host{Name: hn, Files: map[string]*state.File{}, Dirs: map[string]*state.Dir{},
						Roles: map[string]layout.Role{}, Builds: map[string]state.Build{}}
				}
			}
			return out
		}
		hostsIn := func(root string) map[string]transport.Host {
			hosts := map[string]transport.Host{}
			for _, hn := range tree.HostNames() {
				hosts[hn] = local.New(root, hn)
			}
			return hosts
		}

		b.Run("noop/"+sz.Name, func(b *testing.B) {
			p := plan.Build(plan.Input{Layout: l, Tree: tree, Observed: observed(false), Scope: sc})
			if p.HasChanges() {
				b.Fatalf("the plan has changes: %s", p.Summary.Line())
			}
			hosts := hostsIn(b.TempDir())
			b.ReportAllocs()
			for b.Loop() {
				res := Execute(context.Background(), p, tree, hosts, Options{ApplyID: "noop", Secrets: values, Parallelism: 16})
				if res.Err() != nil || len(res.Changed) > 0 {
					b.Fatalf("no-op apply changed %v, failed: %v", res.Changed, res.Err())
				}
			}
			b.ReportMetric(float64(sz.Slots()), "slots")
		})

		if sz.Slots() > 1000 {
			continue // 50,000 files written with fsync take ~20 s: not worth a CI run
		}
		b.Run("create/"+sz.Name, func(b *testing.B) {
			p := plan.Build(plan.Input{Layout: l, Tree: tree, Observed: observed(true), Scope: sc})
			base := b.TempDir()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				root := filepath.Join(base, fmt.Sprint(i))
				res := Execute(context.Background(), p, tree, hostsIn(root), Options{ApplyID: "create", Secrets: values, Parallelism: 16})
				if res.Err() != nil || len(res.Changed) != sz.Hosts {
					b.Fatalf("apply changed %d hosts, want %d; failed: %v", len(res.Changed), sz.Hosts, res.Err())
				}
			}
			b.StopTimer()
			// Check one file of the last apply: the secret was filled in.
			first := tree.HostNames()[0]
			f := tree.Hosts[first].Files[0]
			data, err := os.ReadFile(filepath.Join(base, fmt.Sprint(i), first, f.Path))
			if err != nil {
				b.Fatal(err)
			}
			if want, _ := values.Fill(f.Content); string(data) != string(want) {
				b.Fatalf("%s on %s: not the rendered content", f.Path, first)
			}
			b.ReportMetric(float64(sz.Slots()), "slots")
		})
	}
}
