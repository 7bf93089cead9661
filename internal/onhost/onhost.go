// Package onhost is what cyrplan reads and does on one host through a
// transport: it observes the host for a plan (package state holds the
// result), reads and writes cyrplan's own state there (manifest, roles),
// and runs a slot's init script. Every path comes from package hostpath.
package onhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Observe reads from h everything a plan for want needs. prefixes are
// the build prefixes its slots run from; values, when not nil, are the
// secrets the plan renders with (a file holding them whose hash is that
// of its filled rendering need not be read); cred, if not nil, is the
// value h is to fingerprint with its key (state.Host.Fingerprints).
func Observe(ctx context.Context, h transport.Host, want *render.Host, prefixes []string, values secret.Values, cred *Labeled) (*state.Host, error) {
	o := &state.Host{Name: h.Name(), Files: map[string]*state.File{}, Dirs: map[string]*state.Dir{},
		Roles: map[string]layout.Role{}, Builds: map[string]state.Build{}}
	// The command is asked about what the layout renders here; the
	// files and slots only the manifest names (they left the layout) are
	// read over the transport.
	slots := map[string]bool{}
	wantFile := map[string]*render.File{}
	paths := make([]string, 0, len(want.Files)+len(want.Dirs))
	var keyedPaths []string // without the values, files holding secrets are known by their keyed hash
	for i, f := range want.Files {
		slots[f.Slot] = true
		wantFile[f.Path] = &want.Files[i]
		paths = append(paths, f.Path)
		if values == nil && len(f.Secrets) > 0 {
			keyedPaths = append(keyedPaths, f.Path)
		}
	}
	for _, d := range want.Dirs {
		paths = append(paths, d.Path)
	}
	for s := range slots {
		paths = append(paths, hostpath.Named(s).RoleFile)
	}
	ob, err := observeAll(ctx, h, paths, prefixes, keyedPaths, cred)
	if errors.Is(err, errNoObserve) {
		ob = nil
	} else if err != nil {
		return nil, err
	}
	var m *state.Manifest
	if ob != nil && ob.manifest != manifestUnread {
		if ob.manifest == manifestRead {
			m, err = decodeManifest(h, ob.manifestData)
		}
	} else {
		m, err = ReadManifest(ctx, h)
	}
	if err != nil {
		return nil, err
	}
	o.Manifest = m

	// What each file's secrets are redacted against: its rendered content
	// and the marker lines cyrplan recorded when it wrote it (a slot that
	// left its store no longer renders the line of its password).
	rendered := map[string][]byte{}
	if m != nil {
		for p, mf := range m.Files {
			rendered[p] = []byte(strings.Join(mf.SecretLines, "\n"))
		}
		for _, s := range m.Slots {
			slots[s] = true
		}
	}
	for _, f := range want.Files {
		rendered[f.Path] = append(append(slices.Clip(f.Content), '\n'), rendered[f.Path]...)
	}

	// What the command did not answer, or answered with a hash that is
	// not of the rendering, is inspected over the transport, in one call.
	const (
		isFile = iota
		isDir
		isRole
	)
	var (
		need []string
		kind []int
		slot []string
	)
	ask := func(p string, k int, s string) {
		need, kind, slot = append(need, p), append(kind, k), append(slot, s)
	}
	for p := range rendered {
		if st, asked := ob.path(p); asked {
			if f := fromObserved(st, wantFile[p], rendered[p], values, ob.asWritten(p, m, wantFile[p])); f != nil {
				o.Files[p] = f
				continue
			}
		}
		ask(p, isFile, "")
	}
	for _, d := range want.Dirs {
		if ob != nil {
			o.Dirs[d.Path] = dirOf(ob.paths[d.Path].fileInfo(), ob.paths[d.Path].exists)
			continue
		}
		ask(d.Path, isDir, "")
	}
	for s := range slots {
		if st, asked := ob.path(hostpath.Named(s).RoleFile); asked {
			if !st.exists {
				continue
			} else if r, ok := roleHashes[st.sha256]; ok {
				o.Roles[s] = r
				continue
			}
		}
		ask(hostpath.Named(s).RoleFile, isRole, s)
	}
	entries, err := h.Inspect(ctx, need)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		p := need[i]
		switch kind[i] {
		case isFile:
			o.Files[p] = fromEntry(e, wantFile[p], rendered[p], values)
		case isDir:
			o.Dirs[p] = dirOf(e.Info, e.Exists)
		case isRole:
			if !e.Exists {
				continue
			}
			if what := fileProblem(e.Info); what != "" {
				return nil, fmt.Errorf("%s:%s: %s", h.Name(), p, what)
			}
			r, err := parseRole(h, p, e.Data)
			if err != nil {
				return nil, err
			}
			o.Roles[slot[i]] = r
		}
	}
	if ob != nil {
		o.Exec, o.Builds = true, ob.builds
		if cred != nil {
			o.Fingerprints = ob.keyed.byLabel([]Labeled{*cred})
		}
		return o, nil
	}
	o.Exec = true
	for _, prefix := range prefixes {
		b, err := checkBuild(ctx, h, prefix)
		if err != nil {
			return nil, err
		}
		o.Builds[prefix] = b
		o.Exec = o.Exec && b != state.BuildUnchecked
	}
	return o, nil
}

// roleHashes are the SHA-256 of the role files cyrplan writes (and of
// what ReadRole takes for them): a role file with another hash is read.
var roleHashes = map[string]layout.Role{
	state.Hash([]byte("master\n")):  layout.Master,
	state.Hash([]byte("master")):    layout.Master,
	state.Hash([]byte("replica\n")): layout.Replica,
	state.Hash([]byte("replica")):   layout.Replica,
}

// asWritten says whether the host's file at p has the keyed hash that
// manifest m records for it, written from the same rendering as want:
// the host holds what apply wrote of want.
func (ob *observed) asWritten(p string, m *state.Manifest, want *render.File) bool {
	if ob == nil || ob.keyed == nil || m == nil || want == nil {
		return false
	}
	k, ok := ob.keyed.files[p]
	mf := m.Files[p]
	return ok && mf.Keyed == k && mf.SHA256 == want.SHA256
}

// fromObserved is the state of a managed file from what the observe
// command said of it, or nil when it must be read: it differs from its
// rendering (with values filled in, if it holds secrets and values are
// known), or changed while it was hashed. A file holding secrets whose
// keyed hash is the manifest's (asWritten) is, redacted, what the
// manifest records. What it returns is what reading the file would: the
// host's content is that rendering, redacted.
func fromObserved(s statLine, want *render.File, known []byte, values secret.Values, asWritten bool) *state.File {
	if !s.exists {
		return &state.File{}
	}
	fi := s.fileInfo()
	if what := fileProblem(fi); what != "" {
		return &state.File{Problem: what}
	}
	if want == nil {
		return nil
	}
	if len(want.Secrets) > 0 && values == nil {
		if !asWritten {
			return nil
		}
		return &state.File{Exists: true, Mode: fi.Mode.Perm(), Content: want.Content, SHA256: want.SHA256}
	}
	if s.sha256 == "" {
		return nil
	}
	content := want.Content
	if len(want.Secrets) > 0 {
		filled, err := values.Fill(want.Content)
		if err != nil {
			return nil
		}
		content = filled
	}
	if len(want.Secrets) == 0 && !secret.HasMarker(known) {
		// Redact would leave content alone: every line of it is known
		// and no line of known is a secret's.
		if want.SHA256 != s.sha256 {
			return nil
		}
		return &state.File{Exists: true, Mode: fi.Mode.Perm(), Content: want.Content, SHA256: want.SHA256}
	}
	if state.Hash(content) != s.sha256 {
		return nil
	}
	data := secret.Redact(known, content)
	return &state.File{Exists: true, Mode: fi.Mode.Perm(), Content: data, SHA256: state.Hash(data)}
}

// fileProblem is why cyrplan will not read what Lstat described as a
// managed file, "" if it will.
func fileProblem(fi transport.FileInfo) string {
	if err := transport.CheckReadable(fi); err != nil {
		if fi.Mode.IsRegular() {
			return "the file is too large to be one cyrplan wrote"
		}
		return transport.Kind(fi.Mode) + " stands where cyrplan manages a file"
	}
	return ""
}

// dirOf is a managed directory as Lstat described it (exists false: there
// is nothing).
func dirOf(fi transport.FileInfo, exists bool) *state.Dir {
	od := &state.Dir{}
	switch {
	case exists && fi.IsDir:
		od.Exists, od.Mode = true, fi.Mode.Perm()
	case exists:
		od.Problem = transport.Kind(fi.Mode) + " stands where cyrplan manages a directory"
	}
	return od
}

// fromEntry is the state of a managed file from what Inspect found:
// its content with the secrets redacted (known is its rendering and
// recorded secret lines), or a Problem if it is anything but a regular
// file of a sane size. With values, the secrets it does not hold as
// they are now are Stale.
func fromEntry(e transport.Entry, want *render.File, known []byte, values secret.Values) *state.File {
	if !e.Exists {
		return &state.File{}
	}
	if what := fileProblem(e.Info); what != "" {
		return &state.File{Problem: what}
	}
	mode := e.Info.Mode.Perm()
	if want != nil && len(want.Secrets) == 0 && !secret.HasMarker(known) && bytes.Equal(e.Data, want.Content) {
		// As in fromObserved: Redact would leave it alone.
		return &state.File{Exists: true, Mode: mode, Content: want.Content, SHA256: want.SHA256}
	}
	data := secret.Redact(known, e.Data)
	f := &state.File{Exists: true, Mode: mode, Content: data, SHA256: state.Hash(data)}
	if want != nil && values != nil && len(want.Secrets) > 0 && f.SHA256 == want.SHA256 {
		f.Stale = stale(want.Content, e.Data, values)
	}
	return f
}

// stale are the secrets of rendered, which redacted host content is,
// whose values host does not hold: those of each line of rendered with
// a marker that, filled with values, is not the host's line.
func stale(rendered, host []byte, values secret.Values) []string {
	want, have := bytes.Split(rendered, []byte("\n")), bytes.Split(host, []byte("\n"))
	var out []string
	for i, line := range want {
		names := secret.Names(line)
		if len(names) == 0 {
			continue
		}
		if filled, err := values.Fill(line); err != nil || i >= len(have) || !bytes.Equal(filled, have[i]) {
			out = append(out, names...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkBuild asks the host whether prefix/bin/master is an executable.
func checkBuild(ctx context.Context, h transport.Host, prefix string) (state.Build, error) {
	err := h.Run(ctx, "test -x "+shell.Quote(prefix+"/bin/master"), nil, nil, nil)
	var ee *transport.ExitError
	switch {
	case err == nil:
		return state.BuildPresent, nil
	case errors.Is(err, transport.ErrNoExec):
		return state.BuildUnchecked, nil
	case errors.As(err, &ee):
		return state.BuildMissing, nil
	}
	return state.BuildUnchecked, err
}

// ReadManifest returns the host's manifest, or nil if it has none. A
// manifest that is not one cyrplan could have written is an error that
// names the host and says what to do.
func ReadManifest(ctx context.Context, h transport.Host) (*state.Manifest, error) {
	data, err := h.ReadFile(ctx, hostpath.Manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeManifest(h, data)
}

// decodeManifest decodes the manifest h holds.
func decodeManifest(h transport.Host, data []byte) (*state.Manifest, error) {
	m, err := state.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %v; cyrplan does not trust it: move it away to start over (the next plan then takes every file as new)",
			h.Name(), hostpath.Manifest, err)
	}
	return m, nil
}

// WriteManifest replaces the host's manifest with m.
func WriteManifest(ctx context.Context, h transport.Host, m *state.Manifest) error {
	if err := h.MkdirAll(ctx, hostpath.StateDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	return transport.WriteFile(ctx, h, hostpath.Manifest, m.Encode(), 0o644, transport.Owner{})
}

// ReadRole returns the role h records for slot, and whether it records one.
func ReadRole(ctx context.Context, h transport.Host, slot string) (layout.Role, bool, error) {
	path := hostpath.Named(slot).RoleFile
	data, err := h.ReadFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	r, err := parseRole(h, path, data)
	return r, err == nil, err
}

// parseRole reads the role file at path of h.
func parseRole(h transport.Host, path string, data []byte) (layout.Role, error) {
	r := layout.Role(strings.TrimSpace(string(data)))
	if r != layout.Master && r != layout.Replica {
		return "", fmt.Errorf("%s:%s: unknown role %.40q (master or replica)", h.Name(), path, r)
	}
	return r, nil
}

// WriteRoles records on h the current role of each slot of roles.
func WriteRoles(ctx context.Context, h transport.Host, roles map[string]layout.Role) error {
	if len(roles) == 0 {
		return nil
	}
	if err := h.MkdirAll(ctx, hostpath.RolesDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	files := make([]transport.File, 0, len(roles))
	for _, slot := range slices.Sorted(maps.Keys(roles)) {
		files = append(files, transport.File{Path: hostpath.Named(slot).RoleFile, Data: []byte(string(roles[slot]) + "\n"), Mode: 0o644})
	}
	return h.WriteFiles(ctx, files)
}
