// Package apply executes a plan over transports, exactly as the plan
// says and nothing else: on each host that needs work it records the
// plan's actions as pending, stops the slots that left the layout,
// writes directories and files atomically (keeping the previous
// versions), records roles and the plan's manifest; then it runs the
// service actions in the plan's order, checking each slot's IMAP banner
// and rolling a slot back to its previous files when the check fails.
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

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// FinishGrace is how long, after SIGINT, the hosts being written have to
// finish their files and manifest before their operations end as well.
const FinishGrace = 5 * time.Second

// Options control an apply.
type Options struct {
	ApplyID     string
	Secrets     secret.Values
	Log         io.Writer // progress, one line per step
	Parallelism int       // hosts written at once
	Now         func() time.Time
	// Health checks a slot after it started, reloaded or restarted;
	// HealthTimeout bounds it.
	Health        func(ctx context.Context, addr, servername string) error
	HealthTimeout time.Duration
	// KeepBackups is how many applies' backups a host keeps; older ones
	// are removed. Default 10.
	KeepBackups int
}

// Result says what an apply did.
type Result struct {
	Changed []string         // hosts where something was written or run
	Failed  map[string]error // hosts (or "host/slot") that failed, and why
	Stopped error            // why the actions stopped early, if they did
}

// Err is every failure in one error, nil if none.
func (r *Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(r.Failed)) {
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
	written map[string]*state.Manifest   // host -> the manifest this apply wrote
	creds   map[string]map[string]string // host -> the keyed fingerprints of the credentials it provisions, by label
}

// backup is a file as it was before the apply touched it.
type backup struct {
	existed bool
	content []byte
	mode    fs.FileMode
}

// Execute applies p. hosts must hold a connected transport for every
// host of the plan that needs work; the caller holds their locks.
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
	if opts.KeepBackups < 1 {
		opts.KeepBackups = 10
	}
	a := &applier{p: p, tree: tree, hosts: hosts, opts: opts, res: &Result{},
		backups: map[string]map[string]backup{}, written: map[string]*state.Manifest{}, creds: map[string]map[string]string{}}

	// The hosts being written are finished after SIGINT, but a host that
	// hangs gets only FinishGrace more before its operations end too.
	hostCtx, cancelHosts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHosts()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(FinishGrace, cancelHosts) })
	defer stopGrace()
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Parallelism)
	for _, hp := range p.Hosts {
		if !hp.Read || !hp.NeedsWork {
			continue
		}
		if hosts[hp.Host] == nil {
			a.fail(hp.Host, fmt.Errorf("%s: not connected", hp.Host))
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
			if err := a.host(hostCtx, hp); err != nil {
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
	if !slices.Contains(a.res.Changed, host) {
		a.res.Changed = append(a.res.Changed, host)
		sort.Strings(a.res.Changed)
	}
}

func (a *applier) failed(host string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.res.Failed[host]
	return ok
}

// host runs the file phase on one host. First of all the host records
// the actions this plan runs there as pending, so that however the
// apply stops from here on, the next plan runs them. Then: stops of
// removed slots, directories, files, roles, and last the manifest.
func (a *applier) host(ctx context.Context, hp *plan.Host) error {
	h := a.hosts[hp.Host]
	old, err := onhost.ReadManifest(ctx, h)
	if err != nil {
		return err
	}
	pending := map[string]string{}
	if old != nil {
		maps.Copy(pending, old.Pending)
	}
	var stops []*plan.ServiceAction
	for _, act := range a.p.Actions {
		switch {
		case act.Host != hp.Host:
		case act.Verb == plan.Stop:
			stops = append(stops, act)
		default:
			pending[act.Slot] = string(act.Verb)
		}
	}
	if err := a.recordPending(ctx, h, old, pending); err != nil {
		return err
	}
	if err := h.Sync(ctx); err != nil {
		return err
	}
	// What interrupted applies left: temporary files, old backups.
	if err := onhost.Tidy(ctx, h, writtenDirs(hp, old), a.opts.KeepBackups-1); err != nil {
		return err
	}
	rendered := map[string]*render.File{}
	for i := range a.tree.Hosts[hp.Host].Files {
		f := &a.tree.Hosts[hp.Host].Files[i]
		rendered[f.Path] = f
	}
	// A removed slot whose stop fails keeps its files and its place in
	// the manifest; the rest of the host goes on.
	kept := map[string]bool{}
	for _, act := range stops {
		if err := a.run(ctx, h, act); err != nil {
			a.fail(hp.Host+"/"+act.Slot, fmt.Errorf("%v; its files are kept: stop its master by hand (kill the process %s names) and run apply again",
				err, hostpath.Named(act.Slot).PIDFile))
			kept[act.Slot] = true
		}
		delete(pending, act.Slot)
	}
	for _, d := range hp.Dirs {
		if err := h.MkdirAll(ctx, d.Path, fs.FileMode(d.Mode), transport.Owner{User: d.Owner, Group: d.Group}); err != nil {
			return err
		}
		a.changed(hp.Host)
	}
	var files []*plan.FileChange
	for _, fc := range hp.Files {
		if !kept[fc.Slot] {
			files = append(files, fc)
		}
	}
	if err := a.backup(ctx, h, files); err != nil {
		return err
	}
	// Parents that are not directories of the layout (which exist by
	// now) are made once each.
	made := map[string]bool{}
	for _, d := range a.tree.Hosts[hp.Host].Dirs {
		made[d.Path] = true
	}
	var writes []transport.File
	for _, fc := range files {
		if fc.Action != plan.Create && fc.Action != plan.Update {
			continue
		}
		content, err := a.opts.Secrets.Fill(rendered[fc.Path].Content)
		if err != nil {
			return err
		}
		if dir := parent(fc.Path); !made[dir] {
			if err := h.MkdirAll(ctx, dir, 0o755, transport.Owner{}); err != nil {
				return err
			}
			made[dir] = true
		}
		writes = append(writes, transport.File{Path: fc.Path, Data: content, Mode: fs.FileMode(fc.Mode), Owner: transport.Owner{User: fc.Owner, Group: fc.Group}})
	}
	if err := h.WriteFiles(ctx, writes); err != nil {
		return err
	}
	var done strings.Builder // one write for the host's lines
	defer func() {
		if done.Len() > 0 {
			a.logf("%s", done.String())
		}
	}()
	for _, fc := range files {
		if fc.Action == plan.Delete {
			if err := h.Remove(ctx, fc.Path); err != nil {
				return err
			}
		}
		a.changed(hp.Host)
		if done.Len() > 0 {
			done.WriteByte('\n')
		}
		fmt.Fprintf(&done, "%s: %s %s", hp.Host, verbOf(fc), fc.Path)
	}
	roles := map[string]layout.Role{}
	for _, r := range hp.Roles {
		roles[r.Slot] = r.Role
	}
	if err := onhost.WriteRoles(ctx, h, roles); err != nil {
		return err
	}
	if len(roles) > 0 {
		a.changed(hp.Host)
	}
	// The files are durable before the manifest says they are there.
	if err := h.Sync(ctx); err != nil {
		return err
	}
	keyed, err := a.fingerprint(ctx, h, hp)
	if err != nil {
		return err
	}
	m := a.manifest(hp, old, keyed, kept, pending)
	if err := onhost.WriteManifest(ctx, h, m); err != nil {
		return err
	}
	if err := h.Sync(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	a.written[hp.Host] = m
	a.mu.Unlock()
	a.changed(hp.Host)
	return nil
}

// writtenDirs are the directories where applies write files on the host
// of hp: those of its managed files, then and now, and cyrplan's own.
func writtenDirs(hp *plan.Host, old *state.Manifest) []string {
	dirs := map[string]bool{hostpath.StateDir: true, hostpath.RolesDir: true}
	for p := range hp.Manifest.Files {
		dirs[parent(p)] = true
	}
	if old != nil {
		for p := range old.Files {
			dirs[parent(p)] = true
		}
	}
	return slices.Sorted(maps.Keys(dirs))
}

// recordPending writes the host's manifest as it is with pending as its
// pending actions, before anything else changes on the host.
func (a *applier) recordPending(ctx context.Context, h transport.Host, old *state.Manifest, pending map[string]string) error {
	if old != nil && maps.Equal(old.Pending, pending) {
		return nil
	}
	m := &state.Manifest{Format: state.ManifestFormat, Files: map[string]state.ManifestFile{}}
	if old != nil {
		c := *old
		m = &c
		m.Format = state.ManifestFormat
	}
	m.Pending = pending
	if len(m.Pending) == 0 {
		m.Pending = nil
	}
	return onhost.WriteManifest(ctx, h, m)
}

// fingerprint has the host of hp make the keyed hashes of the files
// holding secrets of the slots in the plan's scope, as they are now (as
// rendered: written, or found so), and of the credentials apply
// provisions there (kept for finish). It returns them by path, "" for a
// file it found none for; nil on a host that runs no commands.
func (a *applier) fingerprint(ctx context.Context, h transport.Host, hp *plan.Host) (map[string]string, error) {
	var paths []string
	for _, f := range a.tree.Hosts[hp.Host].Files {
		if _, inScope := hp.Slots[f.Slot]; inScope && len(f.Secrets) > 0 {
			paths = append(paths, f.Path)
		}
	}
	var values []onhost.Labeled
	seen := map[string]bool{}
	for _, act := range a.p.Actions {
		if label := state.CredentialsLabel(act.User); act.Host == hp.Host && act.Verb == plan.Provision && !seen[label] {
			seen[label] = true
			values = append(values, onhost.Labeled{Label: label, Value: a.opts.Secrets[act.Secret]})
		}
	}
	if len(paths) == 0 && len(values) == 0 {
		return nil, nil
	}
	keyed, creds, err := onhost.Fingerprint(ctx, h, paths, values)
	if err != nil || keyed == nil {
		return nil, err
	}
	for _, p := range paths {
		if _, ok := keyed[p]; !ok {
			keyed[p] = "" // no regular file there
		}
	}
	a.mu.Lock()
	a.creds[hp.Host] = creds
	a.mu.Unlock()
	return keyed, nil
}

// manifest is the plan's manifest of hp with what only the apply knows:
// its id and time, and the keyed hashes of the files that hold secrets.
// A removed slot whose stop failed (kept) stays as the old manifest has
// it.
func (a *applier) manifest(hp *plan.Host, old *state.Manifest, keyed map[string]string, kept map[string]bool, pending map[string]string) *state.Manifest {
	m := &state.Manifest{Format: state.ManifestFormat, ApplyID: a.opts.ApplyID, PlanID: a.p.ID, Commit: a.p.Commit, Dirty: a.p.Dirty,
		Time: a.opts.Now().UTC(), Files: map[string]state.ManifestFile{}}
	for path, pf := range hp.Manifest.Files {
		mf := state.ManifestFile{SHA256: pf.SHA256, Slot: pf.Slot, Kind: pf.Kind, SecretLines: pf.SecretLines}
		if len(mf.SecretLines) == 0 {
			mf.SecretLines = nil
		}
		if k, hashed := keyed[path]; hashed {
			mf.Keyed = k
		} else if old != nil && old.Files[path].SHA256 == mf.SHA256 {
			mf.Keyed = old.Files[path].Keyed // out of scope: as the host's manifest has it
		}
		m.Files[path] = mf
	}
	if old != nil {
		for path, mf := range old.Files {
			if kept[mf.Slot] {
				m.Files[path] = mf
			}
		}
	}
	slots := map[string]bool{}
	for _, f := range m.Files {
		slots[f.Slot] = true
	}
	m.Slots = slices.Sorted(maps.Keys(slots))
	if len(pending) > 0 {
		m.Pending = maps.Clone(pending)
	}
	if old != nil {
		for slot, fp := range old.Credentials {
			if slots[slot] {
				if m.Credentials == nil {
					m.Credentials = map[string]string{}
				}
				m.Credentials[slot] = fp
			}
		}
	}
	return m
}

// backup keeps what is at the paths of files before they are replaced
// or removed, on the host (under the apply's backup directory, in one
// write) and in memory for a rollback.
func (a *applier) backup(ctx context.Context, h transport.Host, files []*plan.FileChange) error {
	saved := map[string]backup{}
	var paths []string
	for _, fc := range files {
		saved[fc.Path] = backup{}
		if fc.Action != plan.Create {
			paths = append(paths, fc.Path)
		}
	}
	entries, err := h.Inspect(ctx, paths)
	if err != nil {
		return err
	}
	var copies []transport.File
	made := map[string]bool{}
	for i, e := range entries {
		if !e.Exists {
			continue
		}
		if err := transport.CheckReadable(e.Info); err != nil {
			return fmt.Errorf("%s: %s: %w", h.Name(), paths[i], err)
		}
		saved[paths[i]] = backup{existed: true, content: e.Data, mode: e.Info.Mode.Perm()}
		dst := hostpath.Backup(a.opts.ApplyID, paths[i])
		if dir := parent(dst); !made[dir] {
			if err := h.MkdirAll(ctx, dir, 0o700, transport.Owner{}); err != nil {
				return err
			}
			made[dir] = true
		}
		copies = append(copies, transport.File{Path: dst, Data: e.Data, Mode: 0o600})
	}
	if err := h.WriteFiles(ctx, copies); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.backups[h.Name()] = saved
	return nil
}

// actions runs the plan's slot actions in order, after the file phase.
// The first failure stops them: a slot that fails its health check is
// rolled back first.
func (a *applier) actions(ctx context.Context) {
	// The actions that ran are no longer pending, and the credentials
	// provisioned are recorded: one manifest write per host at the end
	// (after a crash in between, the next plan runs some of them again,
	// which is harmless; none is ever lost).
	done := map[string][]*plan.ServiceAction{}
	defer func() {
		for _, host := range slices.Sorted(maps.Keys(done)) {
			if err := a.finish(context.WithoutCancel(ctx), host, done[host]); err != nil {
				a.fail(host, err)
			}
		}
	}()
	for _, act := range a.p.Actions {
		if act.Verb == plan.Stop {
			continue // done in the file phase
		}
		if a.failed(act.Host) || a.hosts[act.Host] == nil {
			a.logf("%s %s: skipped, the host failed", act.Host, act.Slot)
			continue
		}
		if err := ctx.Err(); err != nil {
			a.res.Stopped = fmt.Errorf("interrupted before %s of %s on %s: %w", act.Verb, act.Slot, act.Host, err)
			return
		}
		h := a.hosts[act.Host]
		err := a.run(ctx, h, act)
		if err == nil {
			done[act.Host] = append(done[act.Host], act)
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

// finish records in the manifest this apply wrote on host what its
// actions did: they are no longer pending, and the credentials that were
// provisioned are.
func (a *applier) finish(ctx context.Context, host string, done []*plan.ServiceAction) error {
	a.mu.Lock()
	m := a.written[host]
	a.mu.Unlock()
	if m == nil {
		return nil
	}
	changed := false
	for _, act := range done {
		if _, ok := m.Pending[act.Slot]; ok && act.Verb != plan.Provision {
			delete(m.Pending, act.Slot)
			changed = true
		}
		if act.Verb == plan.Provision {
			a.mu.Lock()
			fp := a.creds[host][state.CredentialsLabel(act.User)]
			a.mu.Unlock()
			if m.Credentials == nil {
				m.Credentials = map[string]string{}
			}
			m.Credentials[act.Slot] = fp
			if fp == "" {
				delete(m.Credentials, act.Slot) // not known: the next plan provisions again
			}
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if len(m.Pending) == 0 {
		m.Pending = nil
	}
	if err := onhost.WriteManifest(ctx, a.hosts[host], m); err != nil {
		return err
	}
	return a.hosts[host].Sync(ctx)
}

// run runs one service action through the slot's init script and checks
// the slot's banner afterwards.
func (a *applier) run(ctx context.Context, h transport.Host, act *plan.ServiceAction) error {
	start := time.Now()
	var err error
	switch act.Verb {
	case plan.Stop:
		_, err = onhost.Stop(ctx, h, act.Slot, !act.ByPIDFile)
	case plan.Provision:
		err = onhost.Provision(ctx, h, act.Slot, act.SASLDB, act.User, a.opts.Secrets[act.Secret])
	default:
		_, err = onhost.Service(ctx, h, act.Slot, string(act.Verb))
	}
	if errors.Is(err, transport.ErrNoExec) {
		a.logf("%s %s: %s (not run: this transport runs no commands)", act.Host, act.Slot, act.Verb)
		return nil
	}
	a.changed(act.Host)
	if err != nil {
		return err
	}
	if act.Verb == plan.Stop || act.Verb == plan.Provision || a.opts.Health == nil {
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
	m := a.written[act.Host]
	a.mu.Unlock()
	hp := a.p.Hosts[slices.IndexFunc(a.p.Hosts, func(x *plan.Host) bool { return x.Host == act.Host })]
	// A new slot is stopped while its init script is still there.
	if act.Verb == plan.Start {
		stop := &plan.ServiceAction{Host: act.Host, Slot: act.Slot, Store: act.Store, Verb: plan.Stop, Role: act.Role, Addr: act.Addr}
		if err := a.run(ctx, h, stop); err != nil {
			return err
		}
	}
	restored := 0
	for _, fc := range hp.Files {
		b, ok := saved[fc.Path]
		if fc.Slot != act.Slot || !ok {
			continue
		}
		var err error
		if b.existed {
			err = transport.WriteFile(ctx, h, fc.Path, b.content, b.mode, transport.Owner{User: fc.Owner, Group: fc.Group})
			mf := m.Files[fc.Path]
			mf.SHA256, mf.Keyed = fc.Before, "" // the old content's keyed hash is not known: it is read
			m.Files[fc.Path] = mf
		} else {
			err = h.Remove(ctx, fc.Path)
			delete(m.Files, fc.Path)
		}
		if err != nil {
			return err
		}
		restored++
		a.logf("%s: rolled back %s", act.Host, fc.Path)
	}
	slots := map[string]bool{}
	for _, f := range m.Files {
		slots[f.Slot] = true
	}
	m.Slots = slices.Sorted(maps.Keys(slots))
	delete(m.Pending, act.Slot)
	if err := onhost.WriteManifest(ctx, h, m); err != nil {
		return err
	}
	if act.Verb == plan.Start || restored == 0 {
		return nil // stopped above, or nothing was changed for this slot: leave it as it is
	}
	return a.run(ctx, h, &plan.ServiceAction{Host: act.Host, Slot: act.Slot, Store: act.Store, Verb: plan.Restart, Role: act.Role, Addr: act.Addr})
}

func verbOf(fc *plan.FileChange) string {
	switch fc.Action {
	case plan.Create:
		return "created"
	case plan.Update:
		return "updated"
	case plan.Delete:
		return "deleted"
	}
	return string(fc.Action)
}

func parent(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
