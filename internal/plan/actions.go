package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
)

// serviceAction decides what a slot's master needs from the files it
// runs with that change, parsed on both sides: a changed build, IMAP or
// floating address (the init script) or listen address (the cyrus.conf
// of its role) restarts it; any other change to its imapd.conf or
// cyrus.conf reloads it (SIGHUP). The unit alone needs nothing.
func serviceAction(changed map[render.Kind]*FileChange, obs *state.Host, want *render.Host) *ServiceAction {
	if len(changed) == 0 {
		return nil
	}
	before := func(fc *FileChange) []byte {
		if f := obs.Files[fc.Path]; f != nil {
			return f.Content
		}
		return nil
	}
	after := func(fc *FileChange) []byte {
		for i := range want.Files {
			if want.Files[i].Path == fc.Path {
				return want.Files[i].Content
			}
		}
		return nil
	}
	if fc, ok := changed[render.InitScript]; ok {
		return &ServiceAction{Verb: Restart, Reason: initChange(before(fc), after(fc))}
	}
	if fc, ok := changed[render.CyrusConf]; ok {
		if b, a := listens(before(fc)), listens(after(fc)); !slices.Equal(b, a) {
			return &ServiceAction{Verb: Restart, Reason: "listen address changed (" + listDiff(b, a) + ")"}
		}
		return &ServiceAction{Verb: Reload, Reason: "cyrus.conf changed"}
	}
	if fc, ok := changed[render.IMAPDConf]; ok {
		if fc.Before == fc.After && len(fc.Secrets) > 0 {
			return &ServiceAction{Verb: Reload, Reason: "secret " + strings.Join(fc.Secrets, ", ") + " changed"}
		}
		return &ServiceAction{Verb: Reload, Reason: "imapd.conf changed"}
	}
	return nil
}

var assignRE = regexp.MustCompile(`(?m)^([A-Z_]+)=(.*)$`)

// initChange says what changed in an init script, by its settings.
func initChange(before, after []byte) string {
	b, a := settings(before), settings(after)
	var what []string
	for _, c := range []struct {
		why  string
		vars []string
	}{
		{"build", []string{"PREFIX"}},
		{"IMAP address", []string{"IMAP_ADDR", "IMAP_PORT"}},
		{"floating addresses", []string{"FLOAT_MASTER", "FLOAT_REPLICA", "FLOAT_BITS", "IFACE"}},
	} {
		for _, v := range c.vars {
			if b[v] != a[v] {
				what = append(what, c.why)
				break
			}
		}
	}
	if len(what) == 0 {
		return "init script changed"
	}
	return strings.Join(what, ", ") + " changed"
}

func settings(script []byte) map[string]string {
	out := map[string]string{}
	for _, m := range assignRE.FindAllSubmatch(script, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out
}

var serviceRE = regexp.MustCompile(`(?m)^\s*([a-z0-9_-]+)\s+cmd="[^"]*"\s+listen="([^"]*)"`)

// listens returns every "service listen" of a cyrus.conf, sorted.
func listens(conf []byte) []string {
	var out []string
	for _, m := range serviceRE.FindAllSubmatch(conf, -1) {
		out = append(out, string(m[1])+" "+string(m[2]))
	}
	slices.Sort(out)
	return out
}

// listDiff describes how list b became a: what went and what came.
func listDiff(b, a []string) string {
	var gone, came []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			gone = append(gone, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			came = append(came, x)
		}
	}
	return fmt.Sprintf("%s => %s", orNothing(gone), orNothing(came))
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}
