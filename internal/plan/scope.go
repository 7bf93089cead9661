package plan

import (
	"fmt"
	"strings"

	"github.com/cyrplan/cyrplan/internal/layout"
)

// Scope is what --target and --exclude select: stores, slots and hosts.
// A store stands for its slots, a host for all of its slots and for the
// removal of slots that are no longer in the layout.
type Scope struct {
	Targets  []string `json:"targets,omitempty"`
	Excludes []string `json:"excludes,omitempty"`

	slots      map[string]bool // in scope, after excludes
	hosts      map[string]bool // hosts with a slot in scope
	wholeHosts map[string]bool // hosts in scope as a whole
}

// NewScope resolves targets and excludes against l. No targets means
// everything; an unknown name is an error that says what exists.
func NewScope(l *layout.Layout, targets, excludes []string) (*Scope, error) {
	sc := &Scope{Targets: targets, Excludes: excludes, slots: map[string]bool{}, hosts: map[string]bool{}, wholeHosts: map[string]bool{}}
	if len(targets) == 0 {
		for name := range l.Slots {
			sc.slots[name] = true
		}
		for name := range l.Hosts {
			sc.wholeHosts[name] = true
		}
	}
	for _, t := range targets {
		slots, host, err := resolve(l, t)
		if err != nil {
			return nil, fmt.Errorf("--target %s: %w", t, err)
		}
		for _, s := range slots {
			sc.slots[s] = true
		}
		if host != "" {
			sc.wholeHosts[host] = true
		}
	}
	for _, x := range excludes {
		slots, host, err := resolve(l, x)
		if err != nil {
			return nil, fmt.Errorf("--exclude %s: %w", x, err)
		}
		for _, s := range slots {
			delete(sc.slots, s)
		}
		if host != "" {
			delete(sc.wholeHosts, host)
		}
	}
	for s := range sc.slots {
		sc.hosts[l.Slots[s].Host] = true
	}
	for h := range sc.wholeHosts {
		sc.hosts[h] = true
	}
	return sc, nil
}

// resolve returns the slots a name stands for, and the host if it names one.
func resolve(l *layout.Layout, name string) ([]string, string, error) {
	if st := l.Stores[name]; st != nil {
		return st.Slots(), "", nil
	}
	if l.Slots[name] != nil {
		return []string{name}, "", nil
	}
	if l.Hosts[name] != nil {
		return l.SlotsOn(name), name, nil
	}
	return nil, "", fmt.Errorf("no store, slot or host is called %q", name)
}

// Host reports whether the plan covers host h.
func (sc *Scope) Host(h string) bool { return sc.hosts[h] }

// Slot reports whether the plan covers slot s.
func (sc *Scope) Slot(s string) bool { return sc.slots[s] }

// Removed reports whether the plan may stop slot s on host h and delete
// its files, now that the layout no longer puts it there: when the whole
// host is in scope, or the slot itself still is (it moved hosts).
func (sc *Scope) Removed(h, s string) bool { return sc.wholeHosts[h] || sc.slots[s] }

// String describes the scope for headers: "everything", or the targets.
func (sc *Scope) String() string {
	s := "everything"
	if len(sc.Targets) > 0 {
		s = strings.Join(sc.Targets, ", ")
	}
	if len(sc.Excludes) > 0 {
		s += " except " + strings.Join(sc.Excludes, ", ")
	}
	return s
}
