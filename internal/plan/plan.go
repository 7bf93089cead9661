// Package plan computes the difference between a rendered tree and what
// the hosts hold, and everything an apply does about it: per host the
// files and directories to write with their hashes, the manifest to
// record, the pending actions it clears, and the service actions in
// order. It is pure: the observed state comes in as values (package
// state), nothing here does I/O. A Plan is also the saved plan file, the
// contract that apply executes and nothing else.
package plan

import (
	"fmt"
	"io/fs"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strconv"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
)

// Format is the version of the plan's JSON form (plan --json and saved
// plan files). It changes when a field changes meaning or goes away;
// plan.schema.json describes it.
const Format = 2

// Action is what happens to a file or directory.
type Action string

// The file and directory actions.
const (
	Create    Action = "create"
	Update    Action = "update"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
)

// Verb is what happens to a slot's Cyrus master.
type Verb string

// The service actions, in the order a slot can need them.
const (
	Stop    Verb = "stop"    // a slot no longer in the layout (its mail stays)
	Start   Verb = "start"   // a new slot
	Restart Verb = "restart" // changed build, init script or listen address
	Reload  Verb = "reload"  // changed imapd.conf or cyrus.conf (SIGHUP)
	// Provision puts the replication credentials in the slot's sasldb,
	// so that its peers' sync_client can log in to it.
	Provision Verb = "provision"
)

// Mode is a permission mode, written in JSON as an octal string ("0640").
type Mode fs.FileMode

// MarshalText writes the mode as four octal digits.
func (m Mode) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%04o", uint32(m)), nil }

// UnmarshalText reads an octal mode.
func (m *Mode) UnmarshalText(b []byte) error {
	n, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil || n > 0o7777 {
		return fmt.Errorf("mode %q is not an octal permission mode", b)
	}
	*m = Mode(n)
	return nil
}

// Transport is how a plan reached its hosts, so that apply reaches the
// same ones the same way: a directory per host, or SSH (its credentials
// are never recorded).
type Transport struct {
	Kind string `json:"kind"` // "local" or "ssh"
	Root string `json:"root"` // local: the directory of the hosts
}

// Plan is a complete plan. Every field is part of the JSON format and
// always present.
type Plan struct {
	Format int `json:"format"`
	// ID names the plan; the manifest of every host it changes records
	// it, so that applying it again says it was applied.
	ID      string `json:"id"`
	Version string `json:"cyrplanVersion"` // the cyrplan that made it
	Commit  string `json:"commit"`         // layout commit; "" outside git
	// LayoutID is the git tree of the layout directory at Commit: a
	// merge that leaves the layout's files alone keeps it.
	LayoutID string `json:"layoutId"`
	Dirty    bool   `json:"dirty"` // the layout had uncommitted changes
	// LayoutHash is the SHA-256 of the layout's files as they were read:
	// it binds a plan of a layout outside git or with uncommitted changes.
	LayoutHash string `json:"layoutHash"`
	// RenderHash is the SHA-256 of the rendered tree of the plan's scope:
	// a cyrplan that renders the same layout differently makes another.
	RenderHash string    `json:"renderHash"`
	Transport  Transport `json:"transport"`
	Targets    []string  `json:"targets"`
	Excludes   []string  `json:"excludes"`
	Hosts      []*Host   `json:"hosts"`
	// Actions run in this order: stops, then store by store (replicas
	// before the master), then spare slots.
	Actions []*ServiceAction `json:"actions"`
	// Problems block the apply: a pinned build missing on a host. A host
	// that could not be read is not one: it is not Read, and apply
	// changes the others.
	Problems []string `json:"problems"`
	Summary  Summary  `json:"summary"`
}

// Host is the plan of one host.
type Host struct {
	Host  string `json:"host"`
	Read  bool   `json:"read"`  // false: it could not be read, and nothing is planned for it
	Error string `json:"error"` // why it could not be read (it names the host)
	// NeedsWork: apply writes to this host (files, directories, roles,
	// its manifest) or runs an action on it.
	NeedsWork bool `json:"needsWork"`
	// Observed is the SHA-256 of every file the plan looked at, "" for
	// an absent one; ObservedRoles the role each slot of the plan
	// records. Apply refuses the plan if any differs by then.
	Observed        map[string]string      `json:"observed"`
	ObservedRoles   map[string]layout.Role `json:"observedRoles"`
	ManifestApplyID string                 `json:"manifestApplyId"` // the apply the host's manifest records
	Files           []*FileChange          `json:"files"`           // only changes
	Dirs            []*DirChange           `json:"dirs"`            // only changes
	Roles           []*RoleWrite           `json:"roles"`
	// Slots are the slots of this host the plan covers, with the role
	// each runs in.
	Slots map[string]layout.Role `json:"slots"`
	// Manifest is the manifest apply records on the host (with the
	// apply's id, time and the fingerprints of the secrets it wrote).
	Manifest Manifest `json:"manifest"`
	// ClearsPending are the slots whose action, left pending by an
	// earlier apply, this plan runs or makes moot.
	ClearsPending []string `json:"clearsPending"`
}

// Manifest is the part of a host's manifest that a plan decides.
type Manifest struct {
	Files map[string]ManifestFile `json:"files"`
	Slots []string                `json:"slots"`
}

// ManifestFile is one file of a planned manifest.
type ManifestFile struct {
	SHA256      string   `json:"sha256"`
	Slot        string   `json:"slot"`
	Kind        string   `json:"kind"`
	SecretLines []string `json:"secretLines"`
}

// FileChange is one file to create, update or delete.
type FileChange struct {
	Path   string      `json:"path"`
	Slot   string      `json:"slot"`
	Kind   render.Kind `json:"kind"`
	Action Action      `json:"action"`
	Mode   Mode        `json:"mode"`
	Owner  string      `json:"owner"`
	Group  string      `json:"group"`
	Before string      `json:"before"` // SHA-256 on the host now, "" if absent
	After  string      `json:"after"`  // SHA-256 rendered, "" when deleted
	// Drift: the host's copy is not what cyrplan last wrote; someone
	// changed it by hand, and the plan overwrites (or deletes) it.
	Drift bool `json:"drift"`
	// Secrets are the secrets whose values change in this file: it is
	// written although its redacted content is the same. Names only.
	Secrets []string       `json:"secrets"`
	Diff    string         `json:"diff"` // unified, secrets redacted
	Options []OptionChange `json:"options"`
}

// DirChange is a directory to create or whose mode to set.
type DirChange struct {
	Path   string `json:"path"`
	Slot   string `json:"slot"`
	Action Action `json:"action"`
	Mode   Mode   `json:"mode"`
	Owner  string `json:"owner"`
	Group  string `json:"group"`
}

// RoleWrite records the role a new slot starts in.
type RoleWrite struct {
	Slot string      `json:"slot"`
	Role layout.Role `json:"role"`
}

// ServiceAction is one start, stop, reload or restart of a slot.
type ServiceAction struct {
	Host   string      `json:"host"`
	Slot   string      `json:"slot"`
	Store  string      `json:"store"`
	Verb   Verb        `json:"verb"`
	Role   layout.Role `json:"role"`
	Reason string      `json:"reason"`
	// Addr is the slot's IMAP address, where apply checks its banner.
	Addr string `json:"addr"`
	// ByPIDFile: a stop of a slot whose init script is no longer on the
	// host, done by signalling the master its pidfile names.
	ByPIDFile bool `json:"byPidFile"`
	// User, Secret and SASLDB are, for a provision, the SASL user, the
	// name of the secret holding its password and the slot's sasldb
	// ("" otherwise).
	User   string `json:"user"`
	Secret string `json:"secret"`
	SASLDB string `json:"sasldb"`
}

// OptionChange is one imapd.conf option that changes.
type OptionChange struct {
	Key    string `json:"key"`
	Before string `json:"before"`
	After  string `json:"after"`
	Added  bool   `json:"added"`
	Gone   bool   `json:"removed"`
}

// Summary counts what the plan does.
type Summary struct {
	Add          int `json:"add"` // slots
	Change       int `json:"change"`
	Remove       int `json:"remove"`
	Starts       int `json:"starts"`
	Stops        int `json:"stops"`
	Restarts     int `json:"restarts"`
	Reloads      int `json:"reloads"`
	Provisions   int `json:"provisions"`
	Files        int `json:"files"`
	Drift        int `json:"drift"`
	Hosts        int `json:"hosts"` // in the plan's scope
	Unreachable  int `json:"unreachable"`
	HostsChanged int `json:"hostsChanged"`
}

// Unreachable returns the hosts that could not be read.
func (p *Plan) Unreachable() []*Host {
	var out []*Host
	for _, h := range p.Hosts {
		if !h.Read {
			out = append(out, h)
		}
	}
	return out
}

// HasChanges reports whether applying the plan would do anything.
func (p *Plan) HasChanges() bool {
	for _, h := range p.Hosts {
		if h.NeedsWork {
			return true
		}
	}
	return false
}

// Input is what Build needs.
type Input struct {
	Layout   *layout.Layout
	Tree     *render.Tree
	Observed map[string]*state.Host // by host; a host missing here failed to be read
	Errors   map[string]error       // why a host could not be read
	Scope    *Scope
	// Secrets are the values apply will write (Observed was observed
	// with them: a file holding others is rewritten). Nil compares no
	// secret (status; diff, which has no hosts).
	Secrets secret.Values
	// Labels name the two sides in diffs; default "on the host" and
	// "rendered".
	Labels [2]string
	// The plan's identity, copied as they are.
	ID, Version, Commit, LayoutID, LayoutHash string
	Dirty                                     bool
	Transport                                 Transport
}

// Build computes the plan.
func Build(in Input) *Plan {
	p := &Plan{Format: Format, ID: in.ID, Version: in.Version, Commit: in.Commit, LayoutID: in.LayoutID, Dirty: in.Dirty,
		LayoutHash: in.LayoutHash, RenderHash: RenderHash(in.Tree, in.Scope), Transport: in.Transport,
		Targets: orEmpty(in.Scope.Targets), Excludes: orEmpty(in.Scope.Excludes), Hosts: []*Host{}, Problems: []string{}}
	if in.Labels == [2]string{} {
		in.Labels = [2]string{"on the host", "rendered"}
	}
	// Each host is planned on its own, all at once; the results are
	// put together in the tree's order of hosts.
	type built struct {
		hp                *Host
		stops, provisions []*ServiceAction
		slotActions       map[string]*ServiceAction
		problems          []string
	}
	var names []string
	for _, hn := range in.Tree.HostNames() {
		if in.Scope.Host(hn) {
			names = append(names, hn)
		}
	}
	results := make([]built, len(names))
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	parallel.Each(idx, runtime.GOMAXPROCS(0), func(i int) {
		hn := names[i]
		r := &results[i]
		r.hp = newHost(hn)
		obs := in.Observed[hn]
		if obs == nil {
			r.hp.Error = hn + ": could not be read"
			if err := in.Errors[hn]; err != nil {
				r.hp.Error = err.Error()
			}
			return
		}
		r.hp.Read = true
		if obs.Manifest != nil {
			r.hp.ManifestApplyID = obs.Manifest.ApplyID
		}
		b := &hostBuild{in: in, obs: obs, hp: r.hp, changed: map[string]map[render.Kind]*FileChange{}}
		b.files()
		b.dirs()
		r.stops = b.removed()
		r.slotActions = b.slotActions()
		r.provisions = b.provisions()
		b.manifest()
		r.problems = append(missingBuilds(in.Layout, obs, r.hp), pathProblems(obs)...)
	})
	var stops, provisions []*ServiceAction
	slotActions := map[string]*ServiceAction{}
	for _, r := range results {
		p.Hosts = append(p.Hosts, r.hp)
		stops = append(stops, r.stops...)
		maps.Copy(slotActions, r.slotActions)
		provisions = append(provisions, r.provisions...)
		p.Problems = append(p.Problems, r.problems...)
	}
	p.Problems = append(p.Problems, splitBrains(in.Layout, p.Hosts)...)
	p.Actions = orEmpty(append(append(stops, provisions...), orderActions(in.Layout, p.Hosts, slotActions)...))
	for _, a := range p.Actions {
		for _, h := range p.Hosts {
			if h.Host == a.Host {
				h.NeedsWork = true
			}
		}
	}
	p.summarize()
	return p
}

func newHost(name string) *Host {
	return &Host{Host: name, Observed: map[string]string{}, ObservedRoles: map[string]layout.Role{}, Files: []*FileChange{},
		Dirs: []*DirChange{}, Roles: []*RoleWrite{}, Slots: map[string]layout.Role{},
		Manifest: Manifest{Files: map[string]ManifestFile{}, Slots: []string{}}, ClearsPending: []string{}}
}

// hostBuild is the plan of one host being made.
type hostBuild struct {
	in      Input
	obs     *state.Host
	hp      *Host
	changed map[string]map[render.Kind]*FileChange // slot -> kind -> change of the files it runs with
	gone    map[string]bool                        // slots that left this host
}

func (b *hostBuild) files() {
	l, hp, obs := b.in.Layout, b.hp, b.obs
	for i := range b.in.Tree.Hosts[hp.Host].Files {
		f := &b.in.Tree.Hosts[hp.Host].Files[i]
		if !b.in.Scope.Slot(f.Slot) {
			continue
		}
		if _, ok := hp.Slots[f.Slot]; !ok {
			hp.Slots[f.Slot] = currentRole(l, obs, f.Slot)
			r, ok := obs.Roles[f.Slot]
			if ok {
				hp.ObservedRoles[f.Slot] = r
			}
			// A slot that left its store runs alone, as master.
			if ok && r != layout.Master && l.Slots[f.Slot].Role == layout.Spare {
				hp.Roles = append(hp.Roles, &RoleWrite{Slot: f.Slot, Role: layout.Master})
			}
		}
		of := obs.Files[f.Path]
		if of == nil {
			of = &state.File{}
		}
		hp.Observed[f.Path] = of.SHA256
		fc := b.fileChange(f, of)
		if fc == nil {
			continue
		}
		hp.Files = append(hp.Files, fc)
		if b.changed[f.Slot] == nil {
			b.changed[f.Slot] = map[render.Kind]*FileChange{}
		}
		if f.Kind != render.CyrusConf || f.Path == hostpath.Of(f.Slot, l.Slots[f.Slot].Meta).RoleConf(string(hp.Slots[f.Slot])) {
			b.changed[f.Slot][f.Kind] = fc
		}
	}
}

func (b *hostBuild) fileChange(f *render.File, of *state.File) *FileChange {
	after := f.SHA256
	fc := &FileChange{Path: f.Path, Slot: f.Slot, Kind: f.Kind, Mode: Mode(f.Mode), Owner: f.Owner, Group: f.Group, After: after,
		Secrets: []string{}, Options: []OptionChange{}}
	var mf *state.ManifestFile
	if m := b.obs.Manifest; m != nil {
		if e, ok := m.Files[f.Path]; ok {
			mf = &e
		}
	}
	switch {
	case !of.Exists:
		fc.Action = Create
		fc.Drift = mf != nil // cyrplan wrote it, someone removed it
		return fc
	case of.SHA256 == after && of.Mode == f.Mode:
		fc.Secrets = b.changedSecrets(of)
		if len(fc.Secrets) == 0 {
			return nil
		}
	}
	fc.Action = Update
	fc.Before = of.SHA256
	fc.Drift = mf != nil && mf.SHA256 != of.SHA256
	if of.SHA256 != after {
		// The host's side is redacted already; scrubbing the values the
		// plan knows is the last line of defence.
		fc.Diff = b.in.Secrets.Scrub(string(diff.Diff(b.obs.Name+":"+f.Path+" ("+b.in.Labels[0]+")", of.Content, b.obs.Name+":"+f.Path+" ("+b.in.Labels[1]+")", f.Content)))
		if f.Kind == render.IMAPDConf {
			fc.Options = orEmpty(optionChanges(of.Content, f.Content))
			for i := range fc.Options {
				fc.Options[i].Before = b.in.Secrets.Scrub(fc.Options[i].Before)
			}
		}
	}
	return fc
}

// changedSecrets are the secrets of f whose values the host's copy, as
// rendered otherwise, does not hold (none when the plan compares no
// secrets).
func (b *hostBuild) changedSecrets(of *state.File) []string {
	if b.in.Secrets == nil {
		return []string{}
	}
	return orEmpty(slices.Clone(of.Stale))
}

func (b *hostBuild) dirs() {
	for _, d := range b.in.Tree.Hosts[b.hp.Host].Dirs {
		if !b.in.Scope.Slot(d.Slot) {
			continue
		}
		od := b.obs.Dirs[d.Path]
		dc := &DirChange{Path: d.Path, Slot: d.Slot, Mode: Mode(d.Mode), Owner: d.Owner, Group: d.Group}
		switch {
		case od == nil || !od.Exists:
			dc.Action = Create
		case od.Mode != d.Mode:
			dc.Action = Update
		default:
			continue
		}
		b.hp.Dirs = append(b.hp.Dirs, dc)
	}
}

// removed plans the files and stops of slots cyrplan manages on the host
// that the layout no longer puts there: a stop each (by the pidfile when
// the init script is gone already), and the deletion of what is left of
// their files. Their mail data stays.
func (b *hostBuild) removed() []*ServiceAction {
	l, hp, obs := b.in.Layout, b.hp, b.obs
	b.gone = map[string]bool{}
	m := obs.Manifest
	if m == nil {
		return nil
	}
	rendered := map[string]bool{}
	for _, f := range b.in.Tree.Hosts[hp.Host].Files {
		rendered[f.Path] = true
	}
	for _, path := range slices.Sorted(maps.Keys(m.Files)) {
		mf := m.Files[path]
		if rendered[path] || !b.in.Scope.Removed(hp.Host, mf.Slot) {
			continue
		}
		of := obs.Files[path]
		if of == nil {
			of = &state.File{}
		}
		hp.Observed[path] = of.SHA256
		if l.Slots[mf.Slot] == nil || l.Slots[mf.Slot].Host != hp.Host {
			b.gone[mf.Slot] = true
		}
		if of.Exists {
			hp.Files = append(hp.Files, &FileChange{Path: path, Slot: mf.Slot, Kind: render.Kind(mf.Kind), Action: Delete,
				Before: of.SHA256, Drift: of.SHA256 != mf.SHA256, Secrets: []string{}, Options: []OptionChange{}})
		}
	}
	for _, s := range m.Slots {
		if (l.Slots[s] == nil || l.Slots[s].Host != hp.Host) && b.in.Scope.Removed(hp.Host, s) {
			b.gone[s] = true
		}
	}
	sort.Slice(hp.Files, func(i, j int) bool { return hp.Files[i].Path < hp.Files[j].Path })
	var stops []*ServiceAction
	for _, s := range slices.Sorted(maps.Keys(b.gone)) {
		role := obs.Roles[s]
		if role == "" {
			role = layout.Master
		}
		script := obs.Files[hostpath.Named(s).InitScript]
		stops = append(stops, &ServiceAction{Host: hp.Host, Slot: s, Verb: Stop, Role: role,
			Reason: "no longer in the layout (its mail is kept)", ByPIDFile: script == nil || !script.Exists})
		if _, ok := m.Pending[s]; ok {
			hp.ClearsPending = append(hp.ClearsPending, s)
		}
	}
	return stops
}

// slotActions decides what each slot of the host needs: a new slot
// starts; otherwise the files it runs with decide (see serviceAction),
// and an action an earlier apply left pending is run.
func (b *hostBuild) slotActions() map[string]*ServiceAction {
	l, hp, obs := b.in.Layout, b.hp, b.obs
	out := map[string]*ServiceAction{}
	for _, sn := range slices.Sorted(maps.Keys(hp.Slots)) {
		s := l.Slots[sn]
		isNew := obs.Manifest == nil || !slices.Contains(obs.Manifest.Slots, sn)
		if init := obs.Files[hostpath.Of(s.Name, s.Meta).InitScript]; isNew && (init == nil || !init.Exists) {
			if _, ok := obs.Roles[sn]; !ok {
				hp.Roles = append(hp.Roles, &RoleWrite{Slot: sn, Role: hp.Slots[sn]})
			}
			out[sn] = &ServiceAction{Verb: Start, Reason: "new slot"}
		} else if a := serviceAction(b.changed[sn], obs, b.in.Tree.Hosts[hp.Host]); a != nil {
			out[sn] = a
		}
		if a := pendingAction(obs.Manifest, sn); a != nil {
			if out[sn] == nil || stronger(a.Verb, out[sn].Verb) {
				out[sn] = a
			}
			hp.ClearsPending = append(hp.ClearsPending, sn)
		}
	}
	sort.Strings(hp.ClearsPending)
	return out
}

// provisions plans the replication credentials of the host's store
// slots whose sasldb the manifest does not record as holding the current
// ones (the host's keyed fingerprint of them is not the one recorded):
// every slot of a store, since any may become a replica. They run
// before every start and reload, so that a new password is accepted
// before a master sends it. A host that runs no commands gets none.
func (b *hostBuild) provisions() []*ServiceAction {
	l, hp, obs := b.in.Layout, b.hp, b.obs
	if _, ok := b.in.Secrets[l.Replication.Password]; !ok || !obs.Exec {
		return nil
	}
	var out []*ServiceAction
	for _, sn := range slices.Sorted(maps.Keys(hp.Slots)) {
		s := l.Slots[sn]
		if s.Store == "" {
			continue
		}
		if fp := obs.Fingerprints[state.CredentialsLabel(l.Replication.Authname)]; fp != "" && obs.Manifest != nil && obs.Manifest.Credentials[sn] == fp {
			continue
		}
		out = append(out, &ServiceAction{Host: hp.Host, Slot: sn, Store: s.Store, Verb: Provision, Role: hp.Slots[sn],
			Reason: "replication credentials of " + l.Replication.Authname + " not yet in its sasldb, or changed",
			Addr:   fmt.Sprintf("%s:%d", l.Hosts[s.Host].Address, s.IMAPPort), User: l.Replication.Authname, Secret: l.Replication.Password,
			SASLDB: hostpath.Of(sn, s.Meta).SASLDB()})
	}
	return out
}

// manifest decides the manifest apply records: every rendered file of
// the slots in scope, the removed slots gone (whether or not their files
// still were there), and the rest as the host's manifest has it.
func (b *hostBuild) manifest() {
	hp, obs := b.hp, b.obs
	mp := &hp.Manifest
	if m := obs.Manifest; m != nil {
		for path, mf := range m.Files {
			if !b.gone[mf.Slot] && !b.in.Scope.Slot(mf.Slot) {
				mp.Files[path] = ManifestFile{SHA256: mf.SHA256, Slot: mf.Slot, Kind: mf.Kind, SecretLines: orEmpty(mf.SecretLines)}
			}
		}
	}
	for i := range b.in.Tree.Hosts[hp.Host].Files {
		f := &b.in.Tree.Hosts[hp.Host].Files[i]
		if _, ok := hp.Slots[f.Slot]; ok {
			mf := state.NewManifestFile(f)
			mp.Files[f.Path] = ManifestFile{SHA256: mf.SHA256, Slot: mf.Slot, Kind: mf.Kind, SecretLines: orEmpty(mf.SecretLines)}
		}
	}
	slots := map[string]bool{}
	for _, f := range mp.Files {
		slots[f.Slot] = true
	}
	mp.Slots = orEmpty(slices.Sorted(maps.Keys(slots)))
	hp.NeedsWork = len(hp.Files) > 0 || len(hp.Dirs) > 0 || len(hp.Roles) > 0 || len(hp.ClearsPending) > 0 || !sameManifest(mp, obs.Manifest)
}

// sameManifest reports whether the host's manifest already records mp.
func sameManifest(mp *Manifest, m *state.Manifest) bool {
	if m == nil || len(m.Files) != len(mp.Files) || !slices.Equal(m.Slots, mp.Slots) {
		return false
	}
	for path, f := range mp.Files {
		o, ok := m.Files[path]
		if !ok || o.SHA256 != f.SHA256 || o.Slot != f.Slot || o.Kind != f.Kind || !slices.Equal(orEmpty(o.SecretLines), f.SecretLines) {
			return false
		}
	}
	return true
}

// currentRole is the role a slot runs in: the one its host records, or
// the one the layout prefers; a spare slot's is master.
func currentRole(l *layout.Layout, obs *state.Host, slot string) layout.Role {
	r := l.Slots[slot].Role
	if r == layout.Spare {
		return layout.Master // a spare slot runs alone, as master, whatever it recorded in a store
	}
	if o, ok := obs.Roles[slot]; ok {
		return o
	}
	return r
}

// pendingAction is the action an earlier apply left for slot, if any.
func pendingAction(m *state.Manifest, slot string) *ServiceAction {
	if m == nil || m.Pending[slot] == "" {
		return nil
	}
	return &ServiceAction{Verb: Verb(m.Pending[slot]), Reason: "left pending by apply " + m.ApplyID}
}

// stronger reports whether a does more than b: a start more than a
// restart, a restart more than a reload.
func stronger(a, b Verb) bool {
	rank := map[Verb]int{Reload: 1, Restart: 2, Start: 3}
	return rank[a] > rank[b]
}

// missingBuilds are the problems of every build a slot of hp needs that
// its host lacks.
func missingBuilds(l *layout.Layout, obs *state.Host, hp *Host) []string {
	var problems []string
	missing := map[string][]string{}
	for _, sn := range slices.Sorted(maps.Keys(hp.Slots)) {
		b := l.BuildOf(sn)
		if obs.Builds[b.Prefix] == state.BuildMissing {
			missing[b.Name] = append(missing[b.Name], sn)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		b := l.Builds[name]
		problems = append(problems, fmt.Sprintf("%s: Cyrus build %s is not installed: %s/bin/master is missing (needed by %s); install it or unpin the store",
			hp.Host, name, b.Prefix, joinWords(missing[name])))
	}
	return problems
}

// splitBrains are the stores of which more than one slot, on the hosts
// read, runs as master: apply would (re)start two masters.
func splitBrains(l *layout.Layout, hosts []*Host) []string {
	roles := map[string]layout.Role{}
	for _, h := range hosts {
		maps.Copy(roles, h.Slots)
	}
	var out []string
	for _, name := range l.StoreNames() {
		var masters []string
		for _, sn := range l.Stores[name].Slots() {
			if roles[sn] == layout.Master {
				masters = append(masters, fmt.Sprintf("%s on %s", sn, l.Slots[sn].Host))
			}
		}
		if len(masters) > 1 {
			out = append(out, fmt.Sprintf("%s: %s all record themselves as master; apply will not run two masters: settle it with cyrplan failover %s --to SLOT",
				name, joinWords(masters), name))
		}
	}
	return out
}

// pathProblems are the managed paths of a host where something other
// than what cyrplan manages stands: apply refuses to touch them (a
// link a local user put there would have cyrplan write through it).
func pathProblems(obs *state.Host) []string {
	var out []string
	for _, path := range slices.Sorted(maps.Keys(obs.Files)) {
		if pr := obs.Files[path].Problem; pr != "" {
			out = append(out, fmt.Sprintf("%s:%s: %s; cyrplan never follows links or opens special files: move it away, and find out who put it there", obs.Name, path, pr))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(obs.Dirs)) {
		if pr := obs.Dirs[path].Problem; pr != "" {
			out = append(out, fmt.Sprintf("%s:%s: %s; cyrplan never follows links: move it away, and find out who put it there", obs.Name, path, pr))
		}
	}
	return out
}

// orderActions puts slot actions store by store, the slots that run as
// replicas before the one that runs as master, then spare slots.
func orderActions(l *layout.Layout, hosts []*Host, actions map[string]*ServiceAction) []*ServiceAction {
	roles := map[string]layout.Role{}
	hostOf := map[string]string{}
	for _, h := range hosts {
		for s, r := range h.Slots {
			roles[s], hostOf[s] = r, h.Host
		}
	}
	var out []*ServiceAction
	add := func(slot, store string) {
		a := actions[slot]
		if a == nil {
			return
		}
		s := l.Slots[slot]
		a.Host, a.Slot, a.Store, a.Role = hostOf[slot], slot, store, roles[slot]
		a.Addr = fmt.Sprintf("%s:%d", l.Hosts[s.Host].Address, s.IMAPPort)
		out = append(out, a)
	}
	for _, name := range l.StoreNames() {
		st := l.Stores[name]
		var masters []string
		for _, sn := range st.Slots() {
			if roles[sn] == layout.Master {
				masters = append(masters, sn)
				continue
			}
			add(sn, name)
		}
		for _, sn := range masters {
			add(sn, name)
		}
	}
	for _, sn := range l.SlotNames() {
		if l.Slots[sn].Store == "" {
			add(sn, "")
		}
	}
	return out
}

func (p *Plan) summarize() {
	p.Summary.Hosts = len(p.Hosts)
	for _, h := range p.Hosts {
		if !h.Read {
			p.Summary.Unreachable++
			continue
		}
		p.Summary.Files += len(h.Files)
		for _, f := range h.Files {
			if f.Drift {
				p.Summary.Drift++
			}
		}
		if h.NeedsWork {
			p.Summary.HostsChanged++
		}
	}
	for _, a := range p.Actions {
		switch a.Verb {
		case Start:
			p.Summary.Starts++
			p.Summary.Add++
		case Stop:
			p.Summary.Stops++
			p.Summary.Remove++
		case Restart:
			p.Summary.Restarts++
		case Reload:
			p.Summary.Reloads++
		case Provision:
			p.Summary.Provisions++
		}
	}
	changed := map[string]bool{}
	for _, h := range p.Hosts {
		for _, f := range h.Files {
			changed[f.Slot] = true
		}
		for _, d := range h.Dirs {
			changed[d.Slot] = true
		}
	}
	for _, a := range p.Actions {
		if a.Verb == Start || a.Verb == Stop {
			delete(changed, a.Slot)
		}
	}
	p.Summary.Change = len(changed)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func joinWords(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	out := ""
	for i, s := range w {
		switch {
		case i == 0:
		case i == len(w)-1:
			out += " and "
		default:
			out += ", "
		}
		out += s
	}
	return out
}
