package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cyrplan/cyrplan/internal/render"
)

// RenderHash is the SHA-256 of what t renders for the slots of scope:
// every file's path, mode, owner and content hash, and every directory.
func RenderHash(t *render.Tree, sc *Scope) string {
	h := sha256.New()
	for _, hn := range t.HostNames() {
		if !sc.Host(hn) {
			continue
		}
		fmt.Fprintf(h, "host %s\n", hn)
		for _, f := range t.Hosts[hn].Files {
			if sc.Slot(f.Slot) {
				fmt.Fprintf(h, "file %s %s %04o %s:%s %s\n", f.Slot, f.Path, f.Mode, f.Owner, f.Group, f.SHA256)
			}
		}
		for _, d := range t.Hosts[hn].Dirs {
			if sc.Slot(d.Slot) {
				fmt.Fprintf(h, "dir %s %s %04o %s:%s\n", d.Slot, d.Path, d.Mode, d.Owner, d.Group)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Compare says every way in which fresh, a plan made now of the same
// scope, differs from saved: a saved plan is applied only while what it
// would do now is exactly what it says. Each line names the host and the
// item. Empty means the saved plan still holds.
func Compare(saved, fresh *Plan) []string {
	var why []string
	add := func(format string, args ...any) { why = append(why, fmt.Sprintf(format, args...)) }
	if saved.LayoutHash != fresh.LayoutHash {
		if saved.Commit != fresh.Commit {
			add("the plan was made from layout commit %s; the layout is now at %s", orNone(saved.Commit), orNone(fresh.Commit))
		} else {
			add("the layout's files changed since the plan was made")
		}
	}
	if !slices.Equal(saved.Targets, fresh.Targets) || !slices.Equal(saved.Excludes, fresh.Excludes) {
		add("the plan's targets are %s; this apply's are %s", scopeWords(saved), scopeWords(fresh))
	}
	if saved.Transport != fresh.Transport {
		add("the plan reached its hosts by %s; this apply by %s", saved.Transport, fresh.Transport)
	}
	freshHosts := map[string]*Host{}
	for _, h := range fresh.Hosts {
		freshHosts[h.Host] = h
	}
	savedHosts := map[string]bool{}
	rendersDifferently := false
	for _, sh := range saved.Hosts {
		savedHosts[sh.Host] = true
		fh := freshHosts[sh.Host]
		switch {
		case fh == nil:
			add("%s: no longer in the plan's scope", sh.Host)
			continue
		case !sh.Read:
			add("%s: could not be read when the plan was made, so the plan does nothing there; make a new plan to change it", sh.Host)
			continue
		case !fh.Read:
			continue // it fails alone at apply, as a host that is down
		}
		lines, renders := compareHost(sh, fh)
		why = append(why, lines...)
		rendersDifferently = rendersDifferently || renders
	}
	for _, fh := range fresh.Hosts {
		if !savedHosts[fh.Host] {
			add("%s: in this apply's scope, not in the plan's", fh.Host)
		}
	}
	if saved.RenderHash != fresh.RenderHash && !rendersDifferently {
		add("the layout renders differently now (the plan was made by cyrplan %s, this is %s)", orNone(saved.Version), orNone(fresh.Version))
	}
	if len(why) == 0 {
		if d := compareActions(saved.Actions, fresh.Actions); d != "" {
			add("%s", d)
		}
	}
	slices.Sort(why)
	return slices.Compact(why)
}

// compareHost compares the plan of one host read at both times, and says
// whether a file renders differently.
func compareHost(sh, fh *Host) (why []string, renders bool) {
	add := func(format string, args ...any) { why = append(why, fmt.Sprintf(format, args...)) }
	host := sh.Host
	if sh.ManifestApplyID != fh.ManifestApplyID {
		if fh.ManifestApplyID == "" {
			add("%s: its manifest is gone since the plan was made", host)
		} else {
			add("%s: another apply (%s) ran since the plan was made", host, fh.ManifestApplyID)
		}
	}
	hostChanged := map[string]bool{}
	for _, path := range slices.Sorted(maps.Keys(sh.Observed)) {
		now, ok := fh.Observed[path]
		if ok && now != sh.Observed[path] {
			add("%s:%s changed on the host since the plan was made", host, path)
			hostChanged[path] = true
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(sh.Slots)) {
		if sh.ObservedRoles[slot] != fh.ObservedRoles[slot] || sh.Slots[slot] != fh.Slots[slot] {
			add("%s: %s now runs as %s, as %s when the plan was made (a failover ran since)", host, slot, orNone(string(fh.Slots[slot])), orNone(string(sh.Slots[slot])))
		}
	}
	freshFiles := map[string]*FileChange{}
	for _, f := range fh.Files {
		freshFiles[f.Path] = f
	}
	for _, sf := range sh.Files {
		if hostChanged[sf.Path] {
			continue
		}
		ff := freshFiles[sf.Path]
		delete(freshFiles, sf.Path)
		switch {
		case ff == nil && sf.Action == Delete:
			add("%s:%s: planned to be deleted, no longer is", host, sf.Path)
		case ff == nil:
			add("%s:%s renders differently now", host, sf.Path)
			renders = true
		case ff.After != sf.After:
			add("%s:%s renders differently now", host, sf.Path)
			renders = true
		case !sameFileChange(sf, ff):
			add("%s:%s: planned %s, now %s", host, sf.Path, fileWords(sf), fileWords(ff))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(freshFiles)) {
		if !hostChanged[path] {
			add("%s:%s: not in the plan, now %s", host, path, fileWords(freshFiles[path]))
			renders = true
		}
	}
	if !slices.EqualFunc(sh.Dirs, fh.Dirs, func(a, b *DirChange) bool { return *a == *b }) {
		add("%s: the directories to create or fix differ from the plan's", host)
	}
	if !slices.EqualFunc(sh.Roles, fh.Roles, func(a, b *RoleWrite) bool { return *a == *b }) {
		add("%s: the roles to record differ from the plan's", host)
	}
	if !renders && !sameManifestPlan(sh.Manifest, fh.Manifest) {
		add("%s: the manifest to record differs from the plan's", host)
	}
	if !slices.Equal(sh.ClearsPending, fh.ClearsPending) {
		add("%s: the pending actions differ from the plan's (another apply left some since)", host)
	}
	if sh.NeedsWork != fh.NeedsWork && len(why) == 0 {
		add("%s: the plan %s, now it %s", host, needs(sh.NeedsWork), needs(fh.NeedsWork))
	}
	return why, renders
}

func sameFileChange(a, b *FileChange) bool {
	return a.Action == b.Action && a.Before == b.Before && a.After == b.After && a.Mode == b.Mode &&
		a.Owner == b.Owner && a.Group == b.Group && slices.Equal(a.Secrets, b.Secrets)
}

func sameManifestPlan(a, b Manifest) bool {
	return slices.Equal(a.Slots, b.Slots) && maps.EqualFunc(a.Files, b.Files, func(x, y ManifestFile) bool {
		return x.SHA256 == y.SHA256 && x.Slot == y.Slot && x.Kind == y.Kind && slices.Equal(x.SecretLines, y.SecretLines)
	})
}

// compareActions names the first action that differs, "" if none.
func compareActions(saved, fresh []*ServiceAction) string {
	for i := range max(len(saved), len(fresh)) {
		switch {
		case i >= len(fresh):
			return fmt.Sprintf("action %d (%s) is no longer needed", i+1, actionWords(saved[i]))
		case i >= len(saved):
			return fmt.Sprintf("action %d (%s) is needed now and is not in the plan", i+1, actionWords(fresh[i]))
		case !sameAction(saved[i], fresh[i]):
			return fmt.Sprintf("action %d is now %s, the plan has %s", i+1, actionWords(fresh[i]), actionWords(saved[i]))
		}
	}
	return ""
}

func sameAction(a, b *ServiceAction) bool {
	return a.Host == b.Host && a.Slot == b.Slot && a.Verb == b.Verb && a.Role == b.Role && a.ByPIDFile == b.ByPIDFile
}

func actionWords(a *ServiceAction) string {
	return fmt.Sprintf("%s %s on %s as %s", a.Verb, a.Slot, a.Host, a.Role)
}

func fileWords(f *FileChange) string {
	s := fmt.Sprintf("%s (mode %04o %s:%s)", f.Action, uint32(f.Mode), f.Owner, f.Group)
	if len(f.Secrets) > 0 {
		s += ", secret " + strings.Join(f.Secrets, ", ") + " changed"
	}
	return s
}

func needs(work bool) string {
	if work {
		return "changes it"
	}
	return "leaves it alone"
}

func scopeWords(p *Plan) string {
	if len(p.Targets) == 0 && len(p.Excludes) == 0 {
		return "everything"
	}
	s := strings.Join(p.Targets, ", ")
	if s == "" {
		s = "everything"
	}
	if len(p.Excludes) > 0 {
		s += " except " + strings.Join(p.Excludes, ", ")
	}
	return s
}

func (t Transport) String() string {
	if t.Kind == "local" {
		return "--root " + t.Root
	}
	return t.Kind
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return short(s)
}
