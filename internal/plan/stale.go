package plan

import (
	"fmt"
	"maps"
	"slices"
	"sort"
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
		if sh.ManifestApplyID != fh.ManifestApplyID {
			why = append(why, fmt.Sprintf("%s: another apply (%s) ran since the plan was made", sh.Host, orNone(fh.ManifestApplyID)))
		}
		for _, path := range slices.Sorted(maps.Keys(sh.Observed)) {
			now, ok := fh.Observed[path]
			switch {
			case !ok:
			case sh.Observed[path] != now:
				why = append(why, fmt.Sprintf("%s:%s changed on the host since the plan was made", sh.Host, path))
			}
		}
		after := map[string]string{}
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
