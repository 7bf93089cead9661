// Package layout loads a cyrplan layout (a CUE package), unifies it with
// the embedded schema, checks it, and decodes it into the Go types that
// the rest of cyrplan works from.
package layout

import (
	"cmp"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Layout is a checked, decoded layout. All maps are keyed by name; use
// the sorted accessors for deterministic iteration.
type Layout struct {
	Domain       string
	Builds       map[string]*Build
	DefaultBuild string
	Hosts        map[string]*Host
	Slots        map[string]*Slot // every slot: declared, named by a store, or both
	Stores       map[string]*Store
	Imapd        Options // imapd.conf options for every slot
	Replication  Replication
	Secrets      map[string]*Secret
	Ports        Ports
	Failover     Failover
}

// Build is an installed Cyrus build.
type Build struct {
	Name    string
	Prefix  string // binaries are in Prefix/bin
	Version string // the option catalog it is checked against
}

// Host is one machine.
type Host struct {
	Name      string
	Number    int
	Address   string
	Interface string // device that floating addresses are added to
	SSHUser   string
	SSHPort   int
}

// Role is the part a slot plays in its store.
type Role string

// The roles of a slot. A slot's preferred role is fixed by the layout;
// its current role is live state recorded on its host.
const (
	Master  Role = "master"
	Replica Role = "replica"
	Spare   Role = "spare" // in no store
)

// Slot is one Cyrus instance: a meta and a data partition on a host.
type Slot struct {
	Name      string
	Host      string // host name
	Partition int    // the two-digit number in the name
	Meta      string // mount point of the meta partition
	Data      string // mount point of the data partition
	IMAPPort  int
	SyncPort  int
	Store     string // "" for a spare slot
	Role      Role   // preferred role
}

// Store is a logical mail server: a preferred master and its replicas.
type Store struct {
	Name     string
	Master   string   // preferred master slot
	Replicas []string // replica slots; the first is the default failover target
	Build    string   // pinned or default build name
	Pinned   bool     // Build comes from the store, not defaultCyrus
	IP       FloatingIPs
	Imapd    Options
}

// Slots returns the store's slots, preferred master first.
func (s *Store) Slots() []string {
	return append([]string{s.Master}, s.Replicas...)
}

// FloatingIPs are a store's floating addresses.
type FloatingIPs struct {
	Master  string
	Replica string // may be empty
}

// Replication is how sync_client authenticates to replicas.
type Replication struct {
	Authname string
	Password string // secret name
}

// Secret is a value resolved from the operator's environment at apply time.
type Secret struct {
	Name string
	Env  string
}

// Ports are the port bases of every slot.
type Ports struct {
	IMAP int
	Sync int
}

// Failover holds the failover-spread limit; MaxPerHost 0 means none.
type Failover struct {
	MaxPerHost int
}

// Options are imapd.conf options with their values rendered as text.
type Options map[string]string

// Keys returns the option names, sorted.
func (o Options) Keys() []string { return slices.Sorted(maps.Keys(o)) }

// HostNames returns the host names, sorted by host number (then name).
func (l *Layout) HostNames() []string {
	return sortedBy(l.Hosts, func(name string, h *Host) [2]int { return [2]int{h.Number} })
}

// SlotNames returns every slot name, sorted by host number, then
// partition (then name).
func (l *Layout) SlotNames() []string {
	return sortedBy(l.Slots, func(name string, s *Slot) [2]int { return [2]int{l.Hosts[s.Host].Number, s.Partition} })
}

// sortedBy returns the keys of m sorted by the numbers key gives each
// entry, then by name.
func sortedBy[T any](m map[string]T, key func(string, T) [2]int) []string {
	type entry struct {
		key  [2]int
		name string
	}
	entries := make([]entry, 0, len(m))
	for name, v := range m {
		entries = append(entries, entry{key(name, v), name})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(a.key[0], b.key[0]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.key[1], b.key[1]); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return names
}

// StoreNames returns the store names in natural order (store9 before store10).
func (l *Layout) StoreNames() []string {
	keys := make([]natural, 0, len(l.Stores))
	for _, name := range slices.Sorted(maps.Keys(l.Stores)) {
		keys = append(keys, naturalKey(name))
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.s
	}
	return names
}

// SlotsOn returns the names of the slots on host, in partition order.
func (l *Layout) SlotsOn(host string) []string {
	var names []string
	for n, s := range l.Slots {
		if s.Host == host {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	sort.SliceStable(names, func(i, j int) bool { return l.Slots[names[i]].Partition < l.Slots[names[j]].Partition })
	return names
}

// Prefixes returns, by host, the build prefixes its slots run from,
// sorted, each once: one pass over the slots for every host.
func (l *Layout) Prefixes() map[string][]string {
	out := map[string][]string{}
	for n, s := range l.Slots {
		out[s.Host] = append(out[s.Host], l.BuildOf(n).Prefix)
	}
	for h, p := range out {
		slices.Sort(p)
		out[h] = slices.Compact(p)
	}
	return out
}

// BuildOf returns the build a slot runs: its store's, or the default.
func (l *Layout) BuildOf(slot string) *Build {
	if st := l.Stores[l.Slots[slot].Store]; st != nil {
		return l.Builds[st.Build]
	}
	return l.Builds[l.DefaultBuild]
}

// naturalLess orders names with a numeric suffix by that number.
func naturalLess(a, b string) bool { return naturalKey(a).less(naturalKey(b)) }

// natural is a name split for naturalLess: prefix and numeric suffix
// (-1 if none).
type natural struct {
	s, prefix string
	n         int
}

func naturalKey(s string) natural {
	prefix, n := splitNumber(s)
	return natural{s, prefix, n}
}

func (a natural) less(b natural) bool {
	if a.prefix != b.prefix || a.n < 0 || b.n < 0 {
		return a.s < b.s
	}
	return a.n < b.n
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}
