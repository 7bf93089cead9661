package plan

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/cyrplan/cyrplan/internal/state"
)

// Stale compares a saved plan with a fresh plan of the same scope and
// says why the saved one may no longer be applied: another layout
// commit (unless only files outside the layout differ), a file on a host that changed since, or a rendered file that
// the layout now renders differently. Empty means it is still good.
func Stale(saved, fresh *Plan) []string {
	var why []string
	sameLayout := saved.LayoutID != "" && saved.LayoutID == fresh.LayoutID && !saved.Dirty && !fresh.Dirty
	if saved.Commit != fresh.Commit && !sameLayout {
		why = append(why, fmt.Sprintf("the plan was made from layout commit %s; the layout is now at %s", orNone(saved.Commit), orNone(fresh.Commit)))
	}
	freshHosts := map[string]*Host{}
	for _, h := range fresh.Hosts {
		freshHosts[h.Host] = h
	}
	for _, sh := range saved.Hosts {
		fh := freshHosts[sh.Host]
		if fh == nil {
			why = append(why, fmt.Sprintf("%s: no longer in the plan's scope", sh.Host))
			continue
		}
		if fh.Error != "" {
			continue // reported as a host failure
		}
		switch {
		case sh.ManifestApplyID == fh.ManifestApplyID:
		case fh.ManifestApplyID == "":
			why = append(why, fmt.Sprintf("%s: its manifest (%s) is gone since the plan was made", sh.Host, state.ManifestPath))
		default:
			why = append(why, fmt.Sprintf("%s: another apply (%s) ran since the plan was made", sh.Host, fh.ManifestApplyID))
		}
		for _, path := range slices.Sorted(maps.Keys(sh.Observed)) {
			now, ok := fh.Observed[path]
			switch {
			case !ok:
			case sh.Observed[path] != now:
				why = append(why, fmt.Sprintf("%s:%s changed on the host since the plan was made", sh.Host, path))
			}
		}
		// What the layout renders now: a file the fresh plan leaves alone
		// is on the host as rendered.
		after := maps.Clone(fh.Observed)
		for _, f := range fh.Files {
			after[f.Path] = f.After
		}
		for _, f := range sh.Files {
			if f.Action != Delete && after[f.Path] != f.After {
				why = append(why, fmt.Sprintf("%s:%s renders differently now", sh.Host, f.Path))
			}
		}
	}
	sort.Strings(why)
	return why
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return short(s)
}
