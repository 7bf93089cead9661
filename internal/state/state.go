// Package state reads what a host holds now, as far as cyrplan cares:
// the files it renders, the directories it ensures, the manifest of its
// last apply, the current role of each slot, and whether each Cyrus
// build it needs is installed. This is the "observed" side of a plan.
package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Where cyrplan keeps its own state on each host.
const (
	ManifestPath = render.StateDir + "/manifest.json"
	LockPath     = render.StateDir + "/lock"
	RolesDir     = render.StateDir + "/roles"
	BackupDir    = render.StateDir + "/backup"
)

// ManifestFormat is the version of the manifest's JSON format.
const ManifestFormat = 1

// Manifest is what cyrplan last applied to a host. Hashes are of the
// redacted content (secrets as markers), as everywhere in cyrplan.
type Manifest struct {
	Format  int                     `json:"format"`
	ApplyID string                  `json:"applyId"`
	Commit  string                  `json:"commit,omitempty"` // layout commit, "" outside git
	Dirty   bool                    `json:"dirty,omitempty"`  // applied from uncommitted changes
	Time    time.Time               `json:"time"`
	Files   map[string]ManifestFile `json:"files"` // by path
	Slots   []string                `json:"slots"` // slots cyrplan manages here
	// Pending are the service actions (start, restart, reload) of slots
	// whose files an apply wrote and whose action it has not run yet (it
	// stopped, or was stopped, before): the next plan runs them, so that
	// no restart is ever lost.
	Pending map[string]string `json:"pending,omitempty"` // by slot
}

// ManifestFile is one file of a manifest.
type ManifestFile struct {
	SHA256 string `json:"sha256"`
	Slot   string `json:"slot"`
	Kind   string `json:"kind"`
	// SecretLines are the file's lines that hold a secret marker (names,
	// never values): once the layout no longer renders the file, they
	// redact the host's copy as its rendered content did.
	SecretLines []string `json:"secretLines,omitempty"`
}

// NewManifestFile describes rendered file f in a manifest.
func NewManifestFile(f *render.File) ManifestFile {
	return ManifestFile{SHA256: Hash(f.Content), Slot: f.Slot, Kind: string(f.Kind), SecretLines: secret.MarkerLines(f.Content)}
}

// Hash returns the hex SHA-256 of content.
func Hash(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// File is a file as observed on a host.
type File struct {
	Exists  bool
	Mode    fs.FileMode
	Content []byte // redacted: secrets as markers
	SHA256  string // of Content; "" if absent
}

// Dir is a directory as observed on a host.
type Dir struct {
	Exists bool
	Mode   fs.FileMode
}

// Build is whether a Cyrus build is installed on a host.
type Build int

// The states of a build on a host.
const (
	BuildUnchecked Build = iota // the transport cannot run commands (--root)
	BuildPresent
	BuildMissing
)

// Host is everything observed on one host.
type Host struct {
	Name     string
	Files    map[string]*File // rendered paths and paths the manifest lists
	Dirs     map[string]*Dir
	Manifest *Manifest // nil before the first apply
	Roles    map[string]layout.Role
	Builds   map[string]Build // by prefix
}

// Observe reads from h everything a plan for want needs. prefixes are
// the build prefixes its slots run from.
func Observe(ctx context.Context, h transport.Host, want *render.Host, prefixes []string) (*Host, error) {
	o := &Host{Name: h.Name(), Files: map[string]*File{}, Dirs: map[string]*Dir{}, Roles: map[string]layout.Role{}, Builds: map[string]Build{}}
	m, err := ReadManifest(ctx, h)
	if err != nil {
		return nil, err
	}
	o.Manifest = m

	// What each file's secrets are redacted against: its rendered content,
	// or for a file no longer rendered the marker lines cyrplan wrote
	// (nil: none recorded, redact every password-like option).
	rendered := map[string][]byte{}
	if m != nil {
		for p, mf := range m.Files {
			rendered[p] = nil
			if len(mf.SecretLines) > 0 {
				rendered[p] = []byte(strings.Join(mf.SecretLines, "\n"))
			}
		}
	}
	for _, f := range want.Files {
		rendered[f.Path] = f.Content
	}
	slots := map[string]bool{}
	for _, f := range want.Files {
		slots[f.Slot] = true
	}
	if m != nil {
		for _, s := range m.Slots {
			slots[s] = true
		}
	}

	var (
		mu   sync.Mutex
		jobs []func() error
	)
	for p := range rendered {
		jobs = append(jobs, func() error {
			f, err := readFile(ctx, h, p, rendered[p])
			mu.Lock()
			o.Files[p] = f
			mu.Unlock()
			return err
		})
	}
	for _, d := range want.Dirs {
		jobs = append(jobs, func() error {
			fi, err := h.Stat(ctx, d.Path)
			od := &Dir{}
			switch {
			case err == nil:
				od.Exists, od.Mode = fi.IsDir, fi.Mode.Perm()
			case !errors.Is(err, fs.ErrNotExist):
				return err
			}
			mu.Lock()
			o.Dirs[d.Path] = od
			mu.Unlock()
			return nil
		})
	}
	for s := range slots {
		jobs = append(jobs, func() error {
			r, ok, err := ReadRole(ctx, h, s)
			if ok {
				mu.Lock()
				o.Roles[s] = r
				mu.Unlock()
			}
			return err
		})
	}
	if err := runParallel(jobs, 16); err != nil {
		return nil, err
	}
	for _, prefix := range prefixes {
		b, err := checkBuild(ctx, h, prefix)
		if err != nil {
			return nil, err
		}
		o.Builds[prefix] = b
	}
	return o, nil
}

func readFile(ctx context.Context, h transport.Host, path string, rendered []byte) (*File, error) {
	data, err := h.ReadFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return &File{}, err
	}
	fi, err := h.Stat(ctx, path)
	if err != nil {
		return &File{}, err
	}
	if rendered != nil {
		data = secret.Redact(rendered, data)
	} else {
		data = secret.RedactUnrendered(data)
	}
	return &File{Exists: true, Mode: fi.Mode.Perm(), Content: data, SHA256: Hash(data)}, nil
}

// checkBuild asks the host whether prefix/bin/master is an executable.
func checkBuild(ctx context.Context, h transport.Host, prefix string) (Build, error) {
	err := h.Run(ctx, "test -x "+transport.Quote(prefix+"/bin/master"), nil, nil, nil)
	var ee *transport.ExitError
	switch {
	case err == nil:
		return BuildPresent, nil
	case errors.Is(err, transport.ErrNoExec):
		return BuildUnchecked, nil
	case errors.As(err, &ee):
		return BuildMissing, nil
	}
	return BuildUnchecked, err
}

// ReadManifest returns the host's manifest, or nil if it has none.
func ReadManifest(ctx context.Context, h transport.Host) (*Manifest, error) {
	data, err := h.ReadFile(ctx, ManifestPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s:%s: %w (move it away to start over)", h.Name(), ManifestPath, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s:%s: manifest format %d; this cyrplan reads format %d", h.Name(), ManifestPath, m.Format, ManifestFormat)
	}
	return &m, nil
}

// Encode returns the manifest as written on a host.
func (m *Manifest) Encode() []byte {
	data, _ := json.MarshalIndent(m, "", "  ") // plain data: cannot fail
	return append(data, '\n')
}

// SlotPaths returns the manifest's paths of slot, sorted.
func (m *Manifest) SlotPaths(slot string) []string {
	var out []string
	for p, f := range m.Files {
		if f.Slot == slot {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// runParallel runs jobs with at most n at once and returns the first error.
func runParallel(jobs []func() error, n int) error {
	sem := make(chan struct{}, n)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- job()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// FromTree returns what host holds after a clean apply of t: every file
// and directory as rendered, and a manifest that lists them. Comparing a
// rendered tree with FromTree of another is how two layouts are diffed.
func FromTree(t *render.Tree, host string) *Host {
	h := &Host{Name: host, Files: map[string]*File{}, Dirs: map[string]*Dir{}, Roles: map[string]layout.Role{}, Builds: map[string]Build{}}
	m := &Manifest{Format: ManifestFormat, Files: map[string]ManifestFile{}}
	want := t.Hosts[host]
	if want == nil {
		return h
	}
	slots := map[string]bool{}
	for _, f := range want.Files {
		mf := NewManifestFile(&f)
		h.Files[f.Path] = &File{Exists: true, Mode: f.Mode, Content: f.Content, SHA256: mf.SHA256}
		m.Files[f.Path] = mf
		slots[f.Slot] = true
	}
	for _, d := range want.Dirs {
		h.Dirs[d.Path] = &Dir{Exists: true, Mode: d.Mode}
	}
	for s := range slots {
		m.Slots = append(m.Slots, s)
	}
	sort.Strings(m.Slots)
	h.Manifest = m
	return h
}

// ReadRole returns the role h records for slot, and whether it records one.
func ReadRole(ctx context.Context, h transport.Host, slot string) (layout.Role, bool, error) {
	data, err := h.ReadFile(ctx, RolesDir+"/"+slot)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	r := layout.Role(strings.TrimSpace(string(data)))
	if r != layout.Master && r != layout.Replica {
		return "", false, fmt.Errorf("%s:%s/%s: unknown role %q", h.Name(), RolesDir, slot, r)
	}
	return r, true, nil
}

// WriteRole records slot's current role on h.
func WriteRole(ctx context.Context, h transport.Host, slot string, role layout.Role) error {
	if err := h.MkdirAll(ctx, RolesDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	return h.WriteFile(ctx, RolesDir+"/"+slot, []byte(string(role)+"\n"), 0o644, transport.Owner{})
}
