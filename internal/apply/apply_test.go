package apply

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
)

// runHost is a directory host that records every command and runs it
// successfully, as long as the program it names exists on the host.
type runHost struct {
	transport.Host
	dir  string
	mu   *sync.Mutex
	cmds *[]string
}

func (h runHost) Run(_ context.Context, cmd string, _ io.Reader, _, _ io.Writer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.cmds = append(*h.cmds, h.Name()+": "+cmd)
	if _, err := os.Stat(filepath.Join(h.dir, strings.Fields(cmd)[0])); err != nil {
		return &transport.ExitError{Code: 127}
	}
	return nil
}

// fleet is the example layout on directory hosts that run commands.
type fleet struct {
	t     *testing.T
	l     *layout.Layout
	tree  *render.Tree
	root  string
	hosts map[string]transport.Host
	mu    sync.Mutex
	cmds  []string
}

func newFleet(t *testing.T) *fleet {
	l, err := layout.Load("../../layout")
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, l: l, tree: render.Render(l), root: t.TempDir(), hosts: map[string]transport.Host{}}
	for _, hn := range f.tree.HostNames() {
		f.hosts[hn] = runHost{Host: local.New(f.root, hn), dir: filepath.Join(f.root, hn), mu: &f.mu, cmds: &f.cmds}
	}
	return f
}

// plan observes the hosts and plans.
func (f *fleet) plan() *plan.Plan {
	f.t.Helper()
	obs := map[string]*state.Host{}
	for hn, h := range f.hosts {
		o, err := onhost.Observe(context.Background(), h, f.tree.Hosts[hn], f.l.Prefixes()[hn], nil, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		obs[hn] = o
	}
	sc, err := plan.NewScope(f.l, nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return plan.Build(plan.Input{Layout: f.l, Tree: f.tree, Observed: obs, Scope: sc})
}

func (f *fleet) execute(p *plan.Plan, health func(ctx context.Context, addr, slot string) error) *Result {
	f.mu.Lock()
	f.cmds = nil
	f.mu.Unlock()
	return Execute(context.Background(), p, f.tree, f.hosts, Options{ApplyID: "t" + time.Now().Format("150405000000"),
		Secrets: secret.Values{"replication": "pw"}, Parallelism: 4, Health: health})
}

func (f *fleet) manifest(host string) *state.Manifest {
	f.t.Helper()
	m, err := onhost.ReadManifest(context.Background(), f.hosts[host])
	if err != nil || m == nil {
		f.t.Fatalf("%s manifest: %v", host, err)
	}
	return m
}

// TestFailedStartRollsBack: a new slot that fails its health check is
// stopped while its init script is there, its files are removed, the
// apply stops, and the actions it did not run stay pending in the
// manifests for the next plan, which starts the failed slot anew.
func TestFailedStartRollsBack(t *testing.T) {
	f := newFleet(t)
	p := f.plan()
	res := f.execute(p, func(_ context.Context, _, slot string) error {
		if slot == "slot608" {
			return errors.New("no banner")
		}
		return nil
	})
	if res.Stopped == nil || res.Failed["imap6/slot608"] == nil || len(res.Failed) != 1 {
		t.Fatalf("result %+v (%v); want the apply stopped at slot608, and nothing else failed", res, res.Err())
	}
	// The stop ran before the init script went.
	if i, j := slices.Index(f.cmds, "imap6: /etc/init.d/cyrus-slot608 start"), slices.Index(f.cmds, "imap6: /etc/init.d/cyrus-slot608 stop"); i < 0 || j < i {
		t.Errorf("commands %q; want slot608's start, then its stop", f.cmds)
	}
	for _, path := range []string{"/etc/init.d/cyrus-slot608", "/etc/cyrus/slot608/imapd.conf"} {
		if _, err := os.Stat(filepath.Join(f.root, "imap6", path)); !os.IsNotExist(err) {
			t.Errorf("%s after the rollback: %v; want it removed", path, err)
		}
	}
	m := f.manifest("imap6")
	if slices.Contains(m.Slots, "slot608") || m.Pending["slot608"] != "" {
		t.Errorf("imap6 manifest still has the rolled back slot608: slots %v, pending %v", m.Slots, m.Pending)
	}
	// store23's replica started before the master failed: not pending.
	if m := f.manifest("imap3"); m.Pending["slot308"] != "" {
		t.Errorf("slot308 started, but is pending: %v", m.Pending)
	}
	// store24 comes after store23: its starts never ran.
	if m := f.manifest("imap9"); m.Pending["slot908"] != "start" {
		t.Errorf("slot908 never started, but imap9's pending actions are %v", m.Pending)
	}

	// The next plan starts what is left, slot608 among them, and an
	// apply that succeeds leaves nothing pending.
	p = f.plan()
	var verbs []string
	for _, a := range p.Actions {
		verbs = append(verbs, string(a.Verb)+" "+a.Slot)
	}
	for _, want := range []string{"start slot608", "start slot908", "start slot503"} {
		if !slices.Contains(verbs, want) {
			t.Errorf("next plan %q lacks %q", verbs, want)
		}
	}
	if slices.Contains(verbs, "start slot308") {
		t.Errorf("next plan %q starts slot308 again", verbs)
	}
	if res := f.execute(p, nil); res.Err() != nil || res.Stopped != nil {
		t.Fatalf("second apply: %v %v", res.Err(), res.Stopped)
	}
	for hn := range f.hosts {
		if m := f.manifest(hn); len(m.Pending) != 0 {
			t.Errorf("%s: pending %v after a complete apply", hn, m.Pending)
		}
	}
	if p := f.plan(); p.HasChanges() {
		t.Errorf("not converged: %s", p.Summary.Line())
	}
}

// TestFailedReloadRestoresFiles: a changed slot whose reload fails its
// check gets its previous files back and is restarted with them.
func TestFailedReloadRestoresFiles(t *testing.T) {
	f := newFleet(t)
	if res := f.execute(f.plan(), nil); res.Err() != nil {
		t.Fatal(res.Err())
	}
	conf := filepath.Join(f.root, "imap6/etc/cyrus/slot608/imapd.conf")
	before, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	f.l.Stores["store23"].Imapd["quota_db"] = "skiplist"
	f.tree = render.Render(f.l)
	res := f.execute(f.plan(), func(_ context.Context, _, slot string) error {
		if slot == "slot608" {
			return errors.New("no banner")
		}
		return nil
	})
	if res.Stopped == nil {
		t.Fatal("the apply did not stop")
	}
	after, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("slot608's imapd.conf was not restored:\n%s", after)
	}
	if !strings.Contains(strings.Join(f.cmds, "\n"), "imap6: /etc/init.d/cyrus-slot608 restart") {
		t.Errorf("slot608 was not restarted with its old files: %q", f.cmds)
	}
	// The replica reloaded with the new file and keeps it.
	if data, _ := os.ReadFile(filepath.Join(f.root, "imap3/etc/cyrus/slot308/imapd.conf")); !strings.Contains(string(data), "quota_db: skiplist") {
		t.Error("slot308 lost its new imapd.conf")
	}
	// The next plan changes slot608 again, as a change, not as drift.
	p := f.plan()
	if len(p.Actions) != 1 || p.Actions[0].Slot != "slot608" || p.Actions[0].Verb != plan.Reload || p.Summary.Drift != 0 {
		t.Errorf("next plan: %+v, %s", p.Actions, p.Summary.Line())
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	h := local.New(t.TempDir(), "imap6")
	mine := NewLockInfo("a1", time.Now())
	if err := Lock(ctx, h, mine, func(string) { t.Error("warned on a free lock") }); err != nil {
		t.Fatal(err)
	}
	// Held by a live process of another machine: refused, with the holder.
	other := LockInfo{Holder: "alice@deploy1", Machine: "deploy1", PID: 1, Time: time.Now(), ApplyID: "a2"}
	var le *LockedError
	if err := Lock(ctx, h, other, func(string) {}); !errors.As(err, &le) || le.Info.ApplyID != "a1" {
		t.Fatalf("Lock while held = %v; want a LockedError naming apply a1", err)
	}
	// Only the holder unlocks.
	if err := Unlock(ctx, h, other); err == nil {
		t.Error("Unlock by another apply succeeded")
	}
	if err := Unlock(ctx, h, mine); err != nil {
		t.Fatal(err)
	}
	// A lock of this machine whose process is gone is stale: broken, said.
	dead := mine
	dead.PID, dead.ApplyID = 1<<30, "a3"
	if err := Lock(ctx, h, dead, func(string) {}); err != nil {
		t.Fatal(err)
	}
	var warned string
	if err := Lock(ctx, h, mine, func(s string) { warned = s }); err != nil {
		t.Fatalf("Lock over a stale lock = %v", err)
	}
	if !strings.Contains(warned, "breaking the stale lock of apply a3") {
		t.Errorf("warning %q", warned)
	}
	// BreakLock removes any lock and says whose it was.
	held, err := BreakLock(ctx, h)
	if err != nil || held == nil || held.ApplyID != "a1" {
		t.Errorf("BreakLock = %+v, %v", held, err)
	}
}

// The manifest records the keyed hashes the host made of the files in
// the plan's scope; a file out of scope keeps the one its manifest has,
// while it is the same file; one with no regular file gets none.
func TestManifestKeyed(t *testing.T) {
	const (
		inScope  = "/etc/cyrus/slot608/imapd.conf"
		outScope = "/etc/cyrus/slot609/imapd.conf"
		gone     = "/etc/cyrus/slot610/imapd.conf"
	)
	h1, h2, k1, k2 := state.Hash([]byte("1")), state.Hash([]byte("2")), state.Hash([]byte("k1")), state.Hash([]byte("k2"))
	hp := &plan.Host{Host: "imap6", Manifest: plan.Manifest{Files: map[string]plan.ManifestFile{
		inScope: {SHA256: h1, Slot: "slot608", Kind: "imapd.conf"}, outScope: {SHA256: h1, Slot: "slot609", Kind: "imapd.conf"},
		gone: {SHA256: h1, Slot: "slot610", Kind: "imapd.conf"}}}}
	old := &state.Manifest{Files: map[string]state.ManifestFile{inScope: {SHA256: h1, Keyed: k1}, outScope: {SHA256: h1, Keyed: k1}, gone: {SHA256: h1, Keyed: k1}}}
	a := &applier{p: &plan.Plan{}, opts: Options{Now: time.Now}}
	m := a.manifest(hp, old, map[string]string{inScope: k2, gone: ""}, nil, nil)
	if got := []string{m.Files[inScope].Keyed, m.Files[outScope].Keyed, m.Files[gone].Keyed}; !slices.Equal(got, []string{k2, k1, ""}) {
		t.Errorf("keyed hashes in scope, out of scope, of no file: %q", got)
	}
	old.Files[outScope] = state.ManifestFile{SHA256: h2, Keyed: k1}
	if m := a.manifest(hp, old, nil, nil, nil); m.Files[outScope].Keyed != "" {
		t.Errorf("the keyed hash of another content was kept: %q", m.Files[outScope].Keyed)
	}
}
