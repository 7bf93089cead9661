// Package plan computes the difference between a rendered tree and what
// the hosts hold, and the service actions it implies. It is pure: the
// observed state comes in as values (package state), nothing here does
// I/O. A Plan is also the saved plan file that apply executes.
package plan

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"sort"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
)

// Format is the version of the plan's JSON form (plan --json and saved
// plan files). It changes when a field changes meaning or goes away.
const Format = 1

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
)

// Plan is a complete plan. Every field is part of the JSON format.
type Plan struct {
	Format int    `json:"format"`
	Commit string `json:"commit,omitempty"` // layout commit; "" outside git
	// LayoutID is the git tree of the layout directory at Commit: a
	// merge that leaves the layout's files alone keeps it.
	LayoutID string   `json:"layoutId,omitempty"`
	Dirty    bool     `json:"dirty,omitempty"` // the layout had uncommitted changes
	Targets  []string `json:"targets,omitempty"`
	Excludes []string `json:"excludes,omitempty"`
	Hosts    []*Host  `json:"hosts"`
	// Actions run in this order: stops, then store by store (replicas
	// before the master), then spare slots.
	Actions []*ServiceAction `json:"actions"`
	// Problems block the apply: a pinned build missing on a host. A host
	// that could not be read is not one: it has an Error, and apply
	// changes the others.
	Problems []string `json:"problems,omitempty"`
	Summary  Summary  `json:"summary"`
}

// Host is the plan of one host.
type Host struct {
	Host string `json:"host"`
	// Observed is the SHA-256 of every file the plan looked at, "" for
	// an absent one: apply refuses the plan if any differs by then.
	Observed map[string]string `json:"observed"`
	// ManifestApplyID is the apply the host's manifest records.
	ManifestApplyID string        `json:"manifestApplyId,omitempty"`
	Files           []*FileChange `json:"files,omitempty"` // only changes
	Dirs            []*DirChange  `json:"dirs,omitempty"`  // only changes
	Roles           []*RoleWrite  `json:"roles,omitempty"`
	// Slots are the slots of this host the plan covers, with the role
	// each runs in; the manifest written by apply lists them.
	Slots map[string]layout.Role `json:"slots"`
	Error string                 `json:"error,omitempty"` // why the host could not be read (it names the host)
}

// FileChange is one file to create, update or delete.
type FileChange struct {
	Path   string      `json:"path"`
	Slot   string      `json:"slot"`
	Kind   render.Kind `json:"kind"`
	Action Action      `json:"action"`
	Mode   fs.FileMode `json:"mode"`
	Owner  string      `json:"owner,omitempty"`
	Group  string      `json:"group,omitempty"`
	Before string      `json:"before,omitempty"` // SHA-256 on the host now
	After  string      `json:"after,omitempty"`  // SHA-256 rendered
	// Drift: the host's copy is not what cyrplan last wrote; someone
	// changed it by hand, and the plan overwrites (or deletes) it.
	Drift   bool           `json:"drift,omitempty"`
	Diff    string         `json:"diff,omitempty"` // unified, secrets redacted
	Options []OptionChange `json:"options,omitempty"`
}

// DirChange is a directory to create or whose mode to set.
type DirChange struct {
	Path   string      `json:"path"`
	Slot   string      `json:"slot"`
	Action Action      `json:"action"`
	Mode   fs.FileMode `json:"mode"`
	Owner  string      `json:"owner"`
	Group  string      `json:"group"`
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
	Store  string      `json:"store,omitempty"`
	Verb   Verb        `json:"verb"`
	Role   layout.Role `json:"role"`
	Reason string      `json:"reason"`
	// Servername and Addr let apply check the slot's IMAP banner.
	Addr string `json:"addr,omitempty"`
}

// OptionChange is one imapd.conf option that changes.
type OptionChange struct {
	Key    string `json:"key"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	Added  bool   `json:"added,omitempty"`
	Gone   bool   `json:"removed,omitempty"`
}

// Summary counts what the plan does.
type Summary struct {
	Add, Change, Remove       int // slots
	Starts, Stops             int
	Restarts, Reloads         int
	Files, Drift              int
	Unreachable, HostsChanged int
}

// Unreachable returns the hosts that could not be read.
func (p *Plan) Unreachable() []*Host {
	var out []*Host
	for _, h := range p.Hosts {
		if h.Error != "" {
			out = append(out, h)
		}
	}
	return out
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, h := range p.Hosts {
		if len(h.Files) > 0 || len(h.Dirs) > 0 || len(h.Roles) > 0 {
			return true
		}
	}
	return len(p.Actions) > 0
}

// Input is what Build needs.
type Input struct {
	Layout   *layout.Layout
	Tree     *render.Tree
	Observed map[string]*state.Host // by host; a host missing here failed to be read
	Errors   map[string]error       // why a host could not be read
	Scope    *Scope
	Commit   string
	LayoutID string
	Dirty    bool
	// Labels name the two sides in diffs; default "on the host" and
	// "rendered".
	Labels [2]string
}

// Build computes the plan.
func Build(in Input) *Plan {
	p := &Plan{Format: Format, Commit: in.Commit, LayoutID: in.LayoutID, Dirty: in.Dirty, Targets: in.Scope.Targets, Excludes: in.Scope.Excludes}
	l := in.Layout
	if in.Labels == [2]string{} {
		in.Labels = [2]string{"on the host", "rendered"}
	}
	var stops []*ServiceAction
	slotActions := map[string]*ServiceAction{}
	for _, hn := range in.Tree.HostNames() {
		if !in.Scope.Host(hn) {
			continue
		}
		want := in.Tree.Hosts[hn]
		hp := &Host{Host: hn, Observed: map[string]string{}, Slots: map[string]layout.Role{}}
		p.Hosts = append(p.Hosts, hp)
		obs := in.Observed[hn]
		if obs == nil {
			hp.Error = hn + ": could not be read"
			if err := in.Errors[hn]; err != nil {
				hp.Error = err.Error()
			}
			p.Summary.Unreachable++
			continue
		}
		if obs.Manifest != nil {
			hp.ManifestApplyID = obs.Manifest.ApplyID
		}
		changed := map[string]map[render.Kind]*FileChange{} // slot -> kind -> change
		rendered := map[string]bool{}
		for i := range want.Files {
			f := &want.Files[i]
			rendered[f.Path] = true
			if !in.Scope.Slot(f.Slot) {
				continue
			}
			hp.Slots[f.Slot] = currentRole(l, obs, f.Slot)
			of := obs.Files[f.Path]
			if of == nil {
				of = &state.File{}
			}
			hp.Observed[f.Path] = of.SHA256
			fc := fileChange(obs, f, of, in.Labels)
			if fc == nil {
				continue
			}
			hp.Files = append(hp.Files, fc)
			if changed[f.Slot] == nil {
				changed[f.Slot] = map[render.Kind]*FileChange{}
			}
			if f.Kind != render.CyrusConf || f.Path == roleConf(f.Path, hp.Slots[f.Slot]) {
				changed[f.Slot][f.Kind] = fc
			}
		}
		for _, d := range want.Dirs {
			if !in.Scope.Slot(d.Slot) {
				continue
			}
			od := obs.Dirs[d.Path]
			switch {
			case od == nil || !od.Exists:
				hp.Dirs = append(hp.Dirs, &DirChange{Path: d.Path, Slot: d.Slot, Action: Create, Mode: d.Mode, Owner: d.Owner, Group: d.Group})
			case od.Mode != d.Mode:
				hp.Dirs = append(hp.Dirs, &DirChange{Path: d.Path, Slot: d.Slot, Action: Update, Mode: d.Mode, Owner: d.Owner, Group: d.Group})
			}
		}
		// Files cyrplan wrote before that are no longer rendered.
		removedSlots := map[string]bool{}
		if m := obs.Manifest; m != nil {
			for _, path := range slices.Sorted(maps.Keys(m.Files)) {
				mf := m.Files[path]
				if rendered[path] || !in.Scope.Removed(hn, mf.Slot) {
					continue
				}
				of := obs.Files[path]
				if of == nil {
					of = &state.File{}
				}
				hp.Observed[path] = of.SHA256
				if l.Slots[mf.Slot] == nil || l.Slots[mf.Slot].Host != hn {
					removedSlots[mf.Slot] = true
				}
				if !of.Exists {
					continue
				}
				hp.Files = append(hp.Files, &FileChange{Path: path, Slot: mf.Slot, Kind: render.Kind(mf.Kind), Action: Delete,
					Before: of.SHA256, Drift: of.SHA256 != mf.SHA256})
			}
		}
		sort.Slice(hp.Files, func(i, j int) bool { return hp.Files[i].Path < hp.Files[j].Path })
		for _, s := range slices.Sorted(maps.Keys(removedSlots)) {
			role := obs.Roles[s]
			if role == "" {
				role = layout.Master
			}
			stops = append(stops, &ServiceAction{Host: hn, Slot: s, Verb: Stop, Role: role, Reason: "no longer in the layout (its mail is kept)"})
			p.Summary.Remove++
		}
		for _, sn := range slices.Sorted(maps.Keys(hp.Slots)) {
			s := l.Slots[sn]
			isNew := obs.Manifest == nil || !slices.Contains(obs.Manifest.Slots, sn)
			if init := obs.Files[render.PathsOf(s).InitScript]; isNew && (init == nil || !init.Exists) {
				if _, ok := obs.Roles[sn]; !ok {
					hp.Roles = append(hp.Roles, &RoleWrite{Slot: sn, Role: hp.Slots[sn]})
				}
				slotActions[sn] = &ServiceAction{Verb: Start, Reason: "new slot"}
				p.Summary.Add++
				continue
			}
			if a := serviceAction(changed[sn]); a != nil {
				slotActions[sn] = a
			}
			if a := pendingAction(obs.Manifest, sn); a != nil && (slotActions[sn] == nil || stronger(a.Verb, slotActions[sn].Verb)) {
				slotActions[sn] = a
			}
			if len(changed[sn]) > 0 || slotDirsChanged(hp.Dirs, sn) {
				p.Summary.Change++
			}
		}
		checkBuilds(p, l, obs, hp)
	}
	p.Actions = append(stops, orderActions(l, p.Hosts, slotActions)...)
	p.summarize()
	return p
}

func fileChange(obs *state.Host, f *render.File, of *state.File, labels [2]string) *FileChange {
	after := state.Hash(f.Content)
	fc := &FileChange{Path: f.Path, Slot: f.Slot, Kind: f.Kind, Mode: f.Mode, Owner: f.Owner, Group: f.Group, After: after}
	var mf *state.ManifestFile
	if obs.Manifest != nil {
		if m, ok := obs.Manifest.Files[f.Path]; ok {
			mf = &m
		}
	}
	switch {
	case !of.Exists:
		fc.Action = Create
		fc.Drift = mf != nil // cyrplan wrote it, someone removed it
	case of.SHA256 == after && of.Mode == f.Mode:
		return nil
	default:
		fc.Action = Update
		fc.Before = of.SHA256
		fc.Drift = mf != nil && mf.SHA256 != of.SHA256
		if of.SHA256 != after {
			fc.Diff = string(diff.Diff(obs.Name+":"+f.Path+" ("+labels[0]+")", of.Content, obs.Name+":"+f.Path+" ("+labels[1]+")", f.Content))
			if f.Kind == render.IMAPDConf {
				fc.Options = optionChanges(of.Content, f.Content)
			}
		}
	}
	return fc
}

// currentRole is the role a slot runs in: the one its host records, or
// the one the layout prefers.
func currentRole(l *layout.Layout, obs *state.Host, slot string) layout.Role {
	if r, ok := obs.Roles[slot]; ok {
		return r
	}
	if r := l.Slots[slot].Role; r != layout.Spare {
		return r
	}
	return layout.Master
}

// roleConf is the cyrus.conf a slot in role runs with, next to path.
func roleConf(path string, role layout.Role) string {
	dir := path[:len(path)-len(pathBase(path))]
	return dir + "cyrus-" + string(role) + ".conf"
}

func pathBase(p string) string {
	i := len(p) - 1
	for i >= 0 && p[i] != '/' {
		i--
	}
	return p[i+1:]
}

var listenRE = regexp.MustCompile(`listen="[^"]*"`)

// serviceAction derives what a slot's master needs from the files that
// change: a changed init script or listen address restarts, any other
// change to the configs it runs with reloads.
func serviceAction(changed map[render.Kind]*FileChange) *ServiceAction {
	if len(changed) == 0 {
		return nil
	}
	if _, ok := changed[render.InitScript]; ok {
		return &ServiceAction{Verb: Restart, Reason: "init script changed (build, addresses or ports)"}
	}
	if c, ok := changed[render.CyrusConf]; ok {
		if listenChanged(c.Diff) {
			return &ServiceAction{Verb: Restart, Reason: "listen address changed"}
		}
		return &ServiceAction{Verb: Reload, Reason: "cyrus.conf changed"}
	}
	if _, ok := changed[render.IMAPDConf]; ok {
		return &ServiceAction{Verb: Reload, Reason: "imapd.conf changed"}
	}
	return nil
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

func listenChanged(d string) bool {
	var removed, added [][]byte
	for _, line := range bytes.Split([]byte(d), []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte("---")), bytes.HasPrefix(line, []byte("+++")):
		case bytes.HasPrefix(line, []byte("-")):
			removed = append(removed, listenRE.FindAll(line, -1)...)
		case bytes.HasPrefix(line, []byte("+")):
			added = append(added, listenRE.FindAll(line, -1)...)
		}
	}
	if len(removed) != len(added) {
		return true
	}
	sortBytes(removed)
	sortBytes(added)
	for i := range removed {
		if !bytes.Equal(removed[i], added[i]) {
			return true
		}
	}
	return false
}

func sortBytes(b [][]byte) {
	sort.Slice(b, func(i, j int) bool { return bytes.Compare(b[i], b[j]) < 0 })
}

func slotDirsChanged(dirs []*DirChange, slot string) bool {
	for _, d := range dirs {
		if d.Slot == slot {
			return true
		}
	}
	return false
}

// checkBuilds records a problem for every build a slot of hp needs that
// its host lacks.
func checkBuilds(p *Plan, l *layout.Layout, obs *state.Host, hp *Host) {
	missing := map[string][]string{}
	for _, sn := range slices.Sorted(maps.Keys(hp.Slots)) {
		b := l.BuildOf(sn)
		if obs.Builds[b.Prefix] == state.BuildMissing {
			missing[b.Name] = append(missing[b.Name], sn)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		b := l.Builds[name]
		p.Problems = append(p.Problems, fmt.Sprintf("%s: Cyrus build %s is not installed: %s/bin/master is missing (needed by %s); install it or unpin the store",
			hp.Host, name, b.Prefix, joinWords(missing[name])))
	}
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
	for _, h := range p.Hosts {
		p.Summary.Files += len(h.Files)
		for _, f := range h.Files {
			if f.Drift {
				p.Summary.Drift++
			}
		}
		if len(h.Files) > 0 || len(h.Dirs) > 0 || len(h.Roles) > 0 {
			p.Summary.HostsChanged++
		}
	}
	for _, a := range p.Actions {
		switch a.Verb {
		case Start:
			p.Summary.Starts++
		case Stop:
			p.Summary.Stops++
		case Restart:
			p.Summary.Restarts++
		case Reload:
			p.Summary.Reloads++
		}
	}
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
