// Package state holds what a host holds now, as far as cyrplan cares, as
// plain values: the files it renders, the directories it ensures, the
// manifest of its last apply, the current role of each slot, and whether
// each Cyrus build it needs is installed. This is the "observed" side of
// a plan. It does no I/O: package onhost reads these from a host.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"sort"
	"time"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
)

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
	// Problem is why cyrplan will not touch what stands at the path (a
	// symbolic link, a FIFO, a device, a directory, a file too large to
	// be one cyrplan wrote); "" for a regular file or nothing.
	Problem string
	// Stale are the secrets of the file's rendering whose values the
	// host's copy does not hold, when it was observed with the values a
	// plan writes and is otherwise as rendered.
	Stale []string
}

// Dir is a directory as observed on a host.
type Dir struct {
	Exists  bool
	Mode    fs.FileMode
	Problem string // as File.Problem: something other than a directory stands there
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
	Exec     bool             // the host runs commands (not the local transport)
	// Fingerprints are what the host made, with its own key, of the
	// labelled values it was asked about (see CredentialsLabel), by
	// label; none when it has no key yet or runs no commands.
	Fingerprints map[string]string
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
		h.Files[f.Path] = &File{Exists: true, Mode: f.Mode, Content: f.Content, SHA256: f.SHA256}
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

// ManifestFormat is the version of the manifest's JSON format that this
// cyrplan writes; it reads formats 1 and 2 too (whose fingerprints were
// salted and are dropped).
const ManifestFormat = 3

// Manifest is what cyrplan last applied to a host. Hashes are of the
// redacted content (secrets as markers), as everywhere in cyrplan.
type Manifest struct {
	Format  int                     `json:"format"`
	ApplyID string                  `json:"applyId"`
	PlanID  string                  `json:"planId,omitempty"` // the plan the apply executed
	Commit  string                  `json:"commit,omitempty"` // layout commit, "" outside git
	Dirty   bool                    `json:"dirty,omitempty"`  // applied from uncommitted changes
	Time    time.Time               `json:"time"`
	Files   map[string]ManifestFile `json:"files"` // by path
	Slots   []string                `json:"slots"` // slots cyrplan manages here
	// Credentials are, by slot, the host's keyed fingerprint of the
	// replication credentials provisioned in its sasldb (see
	// CredentialsLabel).
	Credentials map[string]string `json:"credentials,omitempty"`
	// Pending are the service actions (start, restart, reload) of slots
	// whose files an apply is writing or wrote and whose action it has
	// not run yet: they are recorded before the first file is replaced,
	// so that the next plan runs them whenever an apply stops.
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
	// Keyed is, for a file holding secrets, the host's keyed hash of the
	// content apply wrote (made with a key only the host holds, so that
	// no one holding the manifest can test a guessed secret against it):
	// a host whose copy has the same keyed hash holds what was written,
	// which is compared without reading it. "" when not known.
	Keyed string `json:"keyed,omitempty"`
}

// CredentialsLabel labels, among the values a host fingerprints, the
// password of SASL user user as provisioned in a slot's sasldb.
func CredentialsLabel(user string) string { return "sasldb:" + user }

// NewManifestFile describes rendered file f in a manifest (without its
// keyed hash, which only the host makes).
func NewManifestFile(f *render.File) ManifestFile {
	return ManifestFile{SHA256: f.SHA256, Slot: f.Slot, Kind: string(f.Kind), SecretLines: secret.MarkerLines(f.Content)}
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
