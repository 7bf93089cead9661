// Package apply executes a plan over transports: it writes each host's
// files atomically, keeping the previous versions, records what it wrote
// in the host's manifest, and then starts, reloads, restarts or stops
// slots store by store, checking each slot's IMAP banner and rolling a
// slot back to its previous files when the check fails.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Options control an apply.
type Options struct {
	ApplyID     string
	Commit      string
	Dirty       bool
	Secrets     secret.Values
	Log         io.Writer // progress, one line per step
	Parallelism int       // hosts written at once
	Now         func() time.Time
	// Health checks a slot after it started, reloaded or restarted;
	// HealthTimeout bounds it.
	Health        func(ctx context.Context, addr, servername string) error
	HealthTimeout time.Duration
}

// Result says what an apply did.
type Result struct {
	Changed []string         // hosts where something was written or run
	Failed  map[string]error // hosts (or "host/slot") that failed, and why
	Stopped error            // why the actions stopped early, if they did
}

// Partial reports whether some hosts changed while something failed.
func (r *Result) Partial() bool { return len(r.Changed) > 0 && r.Failed != nil }

// Err is every failure in one error, nil if none.
func (r *Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	keys := make([]string, 0, len(r.Failed))
	for k := range r.Failed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		errs = append(errs, r.Failed[k])
	}
	return errors.Join(errs...)
}

type applier struct {
	p     *plan.Plan
	tree  *render.Tree
	hosts map[string]transport.Host
	opts  Options

	mu      sync.Mutex
	res     *Result
	backups map[string]map[string]backup // host -> path -> what was there
}

// backup is a file as it was before the apply touched it.
type backup struct {
	existed bool
	content []byte
	mode    fs.FileMode
	hash    string // redacted hash, as in the manifest
}

// Execute applies p. Hosts must hold a connected transport for every
// host of the plan that has no error; the caller holds their locks.
// Cancelling ctx (SIGINT) stops it: the hosts whose files are being
// written are finished (files and manifest, so that every host stays
// consistent), no other host is begun, and no further action runs.
func Execute(ctx context.Context, p *plan.Plan, tree *render.Tree, hosts map[string]transport.Host, opts Options) *Result {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Parallelism < 1 {
		opts.Parallelism = 1
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 30 * time.Second
	}
	a := &applier{p: p, tree: tree, hosts: hosts, opts: opts, res: &Result{}, backups: map[string]map[string]backup{}}

	stops := map[string][]*plan.ServiceAction{}
	for _, act := range p.Actions {
		if act.Verb == plan.Stop {
			stops[act.Host] = append(stops[act.Host], act)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Parallelism)
	for _, hp := range p.Hosts {
		if hp.Error != "" || (len(hp.Files) == 0 && len(hp.Dirs) == 0 && len(hp.Roles) == 0 && len(stops[hp.Host]) == 0 && !a.manifestStale(hp)) {
			continue
		}
		sem <- struct{}{}
		// Interrupted (SIGINT): hosts begun are finished, files and
		// manifest, so that each host stays consistent; no other begins.
		if err := ctx.Err(); err != nil {
			<-sem
			a.res.Stopped = fmt.Errorf("interrupted before %s was written: %w", hp.Host, err)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.host(context.WithoutCancel(ctx), hp, stops[hp.Host]); err != nil {
				a.fail(hp.Host, err)
			}
		}()
	}
	wg.Wait()
	if a.res.Stopped == nil {
		a.actions(ctx)
	}
	return a.res
}

// manifestStale: nothing to change, but the manifest does not record
// this plan's slots yet (a host that matched before its first apply).
func (a *applier) manifestStale(hp *plan.Host) bool {
	return hp.ManifestApplyID == "" && len(hp.Slots) > 0
}

func (a *applier) logf(format string, args ...any) {
	if a.opts.Log == nil {
		return
	}
	msg := a.opts.Secrets.Scrub(fmt.Sprintf(format, args...))
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintln(a.opts.Log, msg)
}

func (a *applier) fail(key string, err error) {
	err = errors.New(a.opts.Secrets.Scrub(err.Error()))
	a.logf("%s: FAILED: %v", key, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.res.Failed == nil {
		a.res.Failed = map[string]error{}
	}
	a.res.Failed[key] = err
}

func (a *applier) changed(host string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.res.Changed {
		if h == host {
			return
		}
	}
	a.res.Changed = append(a.res.Changed, host)
	sort.Strings(a.res.Changed)
}

func (a *applier) failed(host string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.res.Failed[host]
	return ok
}

// host runs the file phase on one host: stops of removed slots, then
// directories, files, roles, and last the manifest.
func (a *applier) host(ctx context.Context, hp *plan.Host, stops []*plan.ServiceAction) error {
	h := a.hosts[hp.Host]
	rendered := map[string]*render.File{}
	for i := range a.tree.Hosts[hp.Host].Files {
		f := &a.tree.Hosts[hp.Host].Files[i]
		rendered[f.Path] = f
	}
	for _, act := range stops {
		if err := a.run(ctx, h, act); err != nil {
			return err
		}
	}
	for _, d := range hp.Dirs {
		if err := h.MkdirAll(ctx, d.Path, d.Mode, transport.Owner{User: d.Owner, Group: d.Group}); err != nil {
			return err
		}
		a.changed(hp.Host)
	}
	if len(hp.Files) > 0 {
		if err := h.MkdirAll(ctx, state.BackupDir+"/"+a.opts.ApplyID, 0o700, transport.Owner{}); err != nil {
			return err
		}
	}
	for _, fc := range hp.Files {
		if err := a.backup(ctx, h, fc, rendered[fc.Path]); err != nil {
			return err
		}
		switch fc.Action {
		case plan.Create, plan.Update:
			content, err := a.opts.Secrets.Fill(rendered[fc.Path].Content)
			if err != nil {
				return err
			}
			if err := h.MkdirAll(ctx, parent(fc.Path), 0o755, transport.Owner{}); err != nil {
				return err
			}
			if err := h.WriteFile(ctx, fc.Path, content, fc.Mode, transport.Owner{User: fc.Owner, Group: fc.Group}); err != nil {
				return err
			}
		case plan.Delete:
			if err := h.Remove(ctx, fc.Path); err != nil {
				return err
			}
		}
		a.changed(hp.Host)
		a.logf("%s: %s %s", hp.Host, symbol(fc.Action), fc.Path)
	}
	for _, r := range hp.Roles {
		if err := state.WriteRole(ctx, h, r.Slot, r.Role); err != nil {
			return err
		}
		a.changed(hp.Host)
	}
	// Every action this apply will run on the host is pending until it
	// has run: if the apply stops first, the next plan runs it.
	pending := map[string]string{}
	for _, act := range a.p.Actions {
		if act.Host == hp.Host && act.Verb != plan.Stop {
			pending[act.Slot] = string(act.Verb)
		}
	}
	return a.writeManifest(ctx, h, hp, rendered, nil, pending)
}

// backup keeps what is at fc.Path before it is replaced or removed, on
// the host (under the apply's backup directory) and in memory for a
// rollback.
func (a *applier) backup(ctx context.Context, h transport.Host, fc *plan.FileChange, rf *render.File) error {
	b := backup{}
	if fc.Action != plan.Create {
		data, err := h.ReadFile(ctx, fc.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil {
			fi, err := h.Stat(ctx, fc.Path)
			if err != nil {
				return err
			}
			b = backup{existed: true, content: data, mode: fi.Mode.Perm(), hash: fc.Before}
			dst := state.BackupDir + "/" + a.opts.ApplyID + fc.Path
			if err := h.MkdirAll(ctx, parent(dst), 0o700, transport.Owner{}); err != nil {
				return err
			}
			if err := h.WriteFile(ctx, dst, data, 0o600, transport.Owner{}); err != nil {
				return err
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.backups[h.Name()] == nil {
		a.backups[h.Name()] = map[string]backup{}
	}
	a.backups[h.Name()][fc.Path] = b
	return nil
}

// writeManifest records the host's managed files. restored overrides
// the hash of files a rollback put back ("" = removed); pending sets
// the pending action of slots ("" = none).
func (a *applier) writeManifest(ctx context.Context, h transport.Host, hp *plan.Host, rendered map[string]*render.File, restored, pending map[string]string) error {
	old, err := state.ReadManifest(ctx, h)
	if err != nil {
		return err
	}
	m := &state.Manifest{Format: state.ManifestFormat, ApplyID: a.opts.ApplyID, Commit: a.opts.Commit, Dirty: a.opts.Dirty,
		Time: a.opts.Now().UTC(), Files: map[string]state.ManifestFile{}, Pending: map[string]string{}}
	if old != nil {
		maps.Copy(m.Files, old.Files)
		maps.Copy(m.Pending, old.Pending)
	}
	for _, fc := range hp.Files {
		if fc.Action == plan.Delete {
			delete(m.Files, fc.Path)
			delete(m.Pending, fc.Slot)
		}
	}
	for p, f := range rendered {
		if _, ok := hp.Slots[f.Slot]; ok {
			m.Files[p] = state.NewManifestFile(f)
		}
	}
	for p, hash := range restored {
		if hash == "" {
			delete(m.Files, p)
		} else if f, ok := m.Files[p]; ok {
			f.SHA256 = hash
			m.Files[p] = f
		}
	}
	for slot, verb := range pending {
		m.Pending[slot] = verb
		if verb == "" {
			delete(m.Pending, slot)
		}
	}
	if len(m.Pending) == 0 {
		m.Pending = nil
	}
	// The slots cyrplan manages here are those it has files of.
	slots := map[string]bool{}
	for _, f := range m.Files {
		slots[f.Slot] = true
	}
	m.Slots = slices.Sorted(maps.Keys(slots))
	return h.WriteFile(ctx, state.ManifestPath, m.Encode(), 0o644, transport.Owner{})
}

// actions runs the plan's slot actions in order, after the file phase.
// The first failure stops them: a slot that fails its health check is
// rolled back first.
func (a *applier) actions(ctx context.Context) {
	// The actions that ran are no longer pending: one manifest write per
	// host at the end (after a crash in between, the next plan runs some
	// of them again, which is harmless; none is ever lost).
	done := map[string][]string{}
	defer func() {
		for _, host := range slices.Sorted(maps.Keys(done)) {
			if err := donePending(context.WithoutCancel(ctx), a.hosts[host], done[host]); err != nil {
				a.fail(host, err)
			}
		}
	}()
	for _, act := range a.p.Actions {
		if act.Verb == plan.Stop {
			continue // done in the file phase
		}
		if a.failed(act.Host) {
			a.logf("%s %s: skipped, the host failed", act.Host, act.Slot)
			continue
		}
		if err := ctx.Err(); err != nil {
			a.res.Stopped = fmt.Errorf("interrupted before %s %s on %s: %w", act.Verb, act.Slot, act.Host, err)
			return
		}
		h := a.hosts[act.Host]
		err := a.run(ctx, h, act)
		if err == nil {
			done[act.Host] = append(done[act.Host], act.Slot)
			continue
		}
		key := act.Host + "/" + act.Slot
		a.fail(key, err)
		if rerr := a.rollback(context.WithoutCancel(ctx), h, act); rerr != nil {
			a.fail(key+" rollback", rerr)
		}
		a.res.Stopped = fmt.Errorf("stopped after %s of %s on %s failed", act.Verb, act.Slot, act.Host)
		return
	}
}

// donePending removes the pending actions of slots from h's manifest:
// they ran.
func donePending(ctx context.Context, h transport.Host, slots []string) error {
	m, err := state.ReadManifest(ctx, h)
	if err != nil || m == nil || len(m.Pending) == 0 {
		return err
	}
	for _, s := range slots {
		delete(m.Pending, s)
	}
	if len(m.Pending) == 0 {
		m.Pending = nil
	}
	return h.WriteFile(ctx, state.ManifestPath, m.Encode(), 0o644, transport.Owner{})
}

// run runs one service action through the slot's init script and checks
// the slot's banner afterwards.
func (a *applier) run(ctx context.Context, h transport.Host, act *plan.ServiceAction) error {
	script := render.InitDir + "/cyrus-" + act.Slot
	var out strings.Builder
	start := time.Now()
	err := h.Run(ctx, script+" "+string(act.Verb), nil, &out, &out)
	if errors.Is(err, transport.ErrNoExec) {
		a.logf("%s %s: %s (not run: this transport runs no commands)", act.Host, act.Slot, act.Verb)
		return nil
	}
	a.changed(act.Host)
	if err != nil {
		return fmt.Errorf("%s %s %s: %v: %s", act.Host, script, act.Verb, err, strings.TrimSpace(out.String()))
	}
	if act.Verb == plan.Stop || a.opts.Health == nil {
		a.logf("%s %s: %s ok (%s)", act.Host, act.Slot, act.Verb, since(start))
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, a.opts.HealthTimeout)
	defer cancel()
	if err := a.opts.Health(hctx, act.Addr, act.Slot); err != nil {
		return fmt.Errorf("%s %s: %s ran, but the health check failed: %v", act.Host, act.Slot, act.Verb, err)
	}
	a.logf("%s %s: %s ok, banner answers (%s)", act.Host, act.Slot, act.Verb, since(start))
	return nil
}

// rollback puts back the files of act's slot as they were before this
// apply and restarts the slot with them (or stops a new slot).
func (a *applier) rollback(ctx context.Context, h transport.Host, act *plan.ServiceAction) error {
	a.mu.Lock()
	saved := a.backups[act.Host]
	a.mu.Unlock()
	var hp *plan.Host
	for _, x := range a.p.Hosts {
		if x.Host == act.Host {
			hp = x
		}
	}
	// A new slot is stopped while its init script is still there.
	if act.Verb == plan.Start {
		if err := a.run(ctx, h, &plan.ServiceAction{Host: act.Host, Slot: act.Slot, Store: act.Store, Verb: plan.Stop, Role: act.Role, Addr: act.Addr}); err != nil {
			return err
		}
	}
	restored := map[string]string{}
	for _, fc := range hp.Files {
		if fc.Slot != act.Slot {
			continue
		}
		b, ok := saved[fc.Path]
		if !ok {
			continue
		}
		var err error
		if b.existed {
			err = h.WriteFile(ctx, fc.Path, b.content, b.mode, transport.Owner{User: fc.Owner, Group: fc.Group})
			restored[fc.Path] = b.hash
		} else {
			err = h.Remove(ctx, fc.Path)
			restored[fc.Path] = ""
		}
		if err != nil {
			return err
		}
		a.logf("%s: rolled back %s", act.Host, fc.Path)
	}
	rendered := map[string]*render.File{}
	for i := range a.tree.Hosts[act.Host].Files {
		f := &a.tree.Hosts[act.Host].Files[i]
		rendered[f.Path] = f
	}
	if err := a.writeManifest(ctx, h, hp, rendered, restored, map[string]string{act.Slot: ""}); err != nil {
		return err
	}
	if act.Verb == plan.Start || len(restored) == 0 {
		return nil // stopped above, or nothing was changed for this slot: leave it as it is
	}
	return a.run(ctx, h, &plan.ServiceAction{Host: act.Host, Slot: act.Slot, Store: act.Store, Verb: plan.Restart, Role: act.Role, Addr: act.Addr})
}

func symbol(act plan.Action) string {
	switch act {
	case plan.Create:
		return "created"
	case plan.Update:
		return "updated"
	case plan.Delete:
		return "deleted"
	}
	return string(act)
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
