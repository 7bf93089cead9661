package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/render"
)

// MaxManifestSize bounds what cyrplan reads as a manifest: a host's
// manifest lists a few hundred bytes per file it manages.
const MaxManifestSize = 32 << 20

var (
	slotNameRE = regexp.MustCompile(`^slot[0-9]{3,12}$`)
	applyIDRE  = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]{0,63}$`)
	hashRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// IsHash reports whether s is a SHA-256 as cyrplan writes them: 64
// lower-case hex digits.
func IsHash(s string) bool { return hashRE.MatchString(s) }

// ValidID reports whether id is an apply or plan id as cyrplan makes
// them (and so safe in a path or a message).
func ValidID(id string) bool { return applyIDRE.MatchString(id) }

// pendingVerbs are the verbs a manifest may leave pending.
var pendingVerbs = []string{"start", "restart", "reload"}

// DecodeManifest parses and checks a manifest read from a host. A host
// is not trusted: every slot name, path, kind and verb in it must be one
// cyrplan could have written, or the manifest is refused whole.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("%d bytes, more than the %d a manifest may have", len(data), MaxManifestSize)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m.Format < 1 || m.Format > ManifestFormat {
		return nil, fmt.Errorf("manifest format %d; this cyrplan reads formats 1 to %d", m.Format, ManifestFormat)
	}
	if m.Format < 3 {
		m.Credentials = nil // salted: no host made them
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.Files == nil {
		m.Files = map[string]ManifestFile{}
	}
	return &m, nil
}

func (m *Manifest) check() error {
	if m.ApplyID != "" && !applyIDRE.MatchString(m.ApplyID) {
		return fmt.Errorf("apply id %q is not one cyrplan writes", m.ApplyID)
	}
	if m.PlanID != "" && !applyIDRE.MatchString(m.PlanID) {
		return fmt.Errorf("plan id %q is not one cyrplan writes", m.PlanID)
	}
	for _, s := range m.Slots {
		if !slotNameRE.MatchString(s) {
			return fmt.Errorf("slot %q is not a slot name", s)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(m.Files)) {
		f := m.Files[path]
		if !slotNameRE.MatchString(f.Slot) {
			return fmt.Errorf("file %q: slot %q is not a slot name", path, f.Slot)
		}
		if !slices.Contains(managedFiles(f.Slot), path) {
			return fmt.Errorf("file %q is not a file cyrplan writes for %s", path, f.Slot)
		}
		if !slices.Contains(render.Kinds, render.Kind(f.Kind)) {
			return fmt.Errorf("file %q: unknown kind %q", path, f.Kind)
		}
		if !hashRE.MatchString(f.SHA256) {
			return fmt.Errorf("file %q: %q is not a SHA-256", path, f.SHA256)
		}
		if f.Keyed != "" && !hashRE.MatchString(f.Keyed) {
			return fmt.Errorf("file %q: keyed hash %q is not a SHA-256", path, f.Keyed)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(m.Credentials)) {
		if !slotNameRE.MatchString(s) || !hashRE.MatchString(m.Credentials[s]) {
			return fmt.Errorf("credentials of %q: not a slot name and a fingerprint", s)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(m.Pending)) {
		if !slotNameRE.MatchString(s) {
			return fmt.Errorf("pending action of %q: not a slot name", s)
		}
		if v := m.Pending[s]; !slices.Contains(pendingVerbs, v) {
			return fmt.Errorf("pending action %q of %s: not one of %v", v, s, pendingVerbs)
		}
	}
	return nil
}

// managedFiles are the paths cyrplan writes for a slot.
func managedFiles(slot string) []string {
	p := hostpath.Named(slot)
	return []string{p.IMAPDConf, p.MasterConf, p.ReplicaConf, p.InitScript, p.Unit}
}

// Encode returns the manifest as written on a host.
func (m *Manifest) Encode() []byte {
	data, _ := json.MarshalIndent(m, "", "  ") // plain data: cannot fail
	return append(data, '\n')
}
