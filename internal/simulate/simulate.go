// Package simulate answers "what if these hosts went out of service?"
// from the layout alone, touching nothing: which stores lose their
// master, where each master goes, how many masters every host holds
// before and after, which stores are left without a live replica or
// without any live slot, and whether failover.maxPerHost still holds.
//
// The package is pure: no I/O, no clock. Where a store's master goes is
// decided by one rule, the Chooser, which Targets applies to a set of
// down hosts. `cyrplan simulate --down` uses it, and a drain of a host
// must use it too (Targets with that one host), so that what simulate
// predicts for a host is exactly what draining it does.
package simulate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cyrplan/cyrplan/internal/layout"
)

// Reason says why a store's master goes where it goes.
type Reason string

// The reasons of a Move.
const (
	// FirstReplica: the store ran on its preferred master and its first
	// replica takes over, as a failover does.
	FirstReplica Reason = "first-replica"
	// PreferredMaster: the store ran backwards (on a replica) and goes
	// back to its preferred master.
	PreferredMaster Reason = "preferred-master"
	// NextLive: the slots a failover would pick first are on down hosts;
	// the first live one takes over.
	NextLive Reason = "next-live"
	// Spread: the host a failover would pick already takes
	// failover.maxPerHost of the down host's masters; the next live slot
	// whose host has room takes over.
	Spread Reason = "spread"
	// OverLimit: every live slot's host already takes
	// failover.maxPerHost of the down host's masters; the first live slot
	// takes over anyway and the limit is broken.
	OverLimit Reason = "over-limit"
	// NoLiveSlot: every slot of the store is on a down host; the store
	// loses service.
	NoLiveSlot Reason = "no-live-slot"
)

// Move is what happens to one store whose current master is on a down
// host.
type Move struct {
	Store    string `json:"store"`
	FromSlot string `json:"fromSlot"` // the current master
	FromHost string `json:"fromHost"`
	ToSlot   string `json:"toSlot"` // the new master; "" when the store has no live slot
	ToHost   string `json:"toHost"` // "" when the store has no live slot
	Reason   Reason `json:"reason"`
	Note     string `json:"note"` // Reason in words, naming the hosts involved
}

// HostMasters is how many masters a host holds before and after.
type HostMasters struct {
	Host   string `json:"host"`
	Down   bool   `json:"down"`
	Before int    `json:"before"`
	After  int    `json:"after"` // 0 for a down host
}

// Pair counts the masters of one down host that move to one other host.
type Pair struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Masters int    `json:"masters"`
}

// Result is the outcome of taking hosts down. Every slice is non-nil,
// so that its JSON form always holds every field.
type Result struct {
	Down []string `json:"down"` // the down hosts, in host order
	// Stores are the stores whose current master is on a down host, in
	// store order.
	Stores []Move `json:"stores"`
	// Hosts are the masters of every host, in host order.
	Hosts []HostMasters `json:"hosts"`
	// NoLiveReplica are the stores that keep (or get) a master but have
	// no other slot on a live host: one more host lost and they lose
	// service.
	NoLiveReplica []string `json:"noLiveReplica"`
	// NoService are the stores with no slot on a live host.
	NoService []string `json:"noService"`
	// Limit is failover.maxPerHost; 0 means no limit.
	Limit int `json:"limit"`
	// Worst is the pair with the most masters moved from one down host
	// to one other host (the first in host order on a tie); zero when
	// no master moves.
	Worst Pair `json:"worst"`
	// OverLimit are the pairs above Limit, in host order.
	OverLimit []Pair `json:"overLimit"`
	// LimitHolds: no pair is above Limit.
	LimitHolds bool `json:"limitHolds"`
	// OK: every store keeps a master and the limit holds.
	OK bool `json:"ok"`
}

// Down takes the hosts named by down out of service and says what
// happens. current maps a store to the slot that is its master now; a
// store missing from it (or all of them, with a nil map), or mapped to
// a slot that is not one of its own, runs on its preferred master.
// Names in down that are not hosts of l are ignored: callers check them.
func Down(l *layout.Layout, current map[string]string, down []string) *Result {
	c := NewChooser(l, down)
	r := &Result{
		Down:          []string{},
		Hosts:         []HostMasters{},
		NoLiveReplica: []string{},
		NoService:     []string{},
		OverLimit:     []Pair{},
		Limit:         l.Failover.MaxPerHost,
	}
	for _, h := range l.HostNames() {
		if c.down[h] {
			r.Down = append(r.Down, h)
		}
	}
	r.Stores = c.targets(current)
	moved := map[string]Move{}
	for _, m := range r.Stores {
		moved[m.Store] = m
	}

	before, after := map[string]int{}, map[string]int{}
	for _, name := range l.StoreNames() {
		st := l.Stores[name]
		master := Current(st, current)
		before[l.Slots[master].Host]++
		if m, ok := moved[name]; ok {
			if m.ToSlot == "" {
				r.NoService = append(r.NoService, name)
				continue
			}
			master = m.ToSlot
		}
		after[l.Slots[master].Host]++
		if !slices.ContainsFunc(st.Slots(), func(sn string) bool { return sn != master && !c.down[l.Slots[sn].Host] }) {
			r.NoLiveReplica = append(r.NoLiveReplica, name)
		}
	}
	for _, h := range l.HostNames() {
		r.Hosts = append(r.Hosts, HostMasters{Host: h, Down: c.down[h], Before: before[h], After: after[h]})
	}

	for _, p := range c.Pairs() {
		if p.Masters > r.Worst.Masters {
			r.Worst = p
		}
		if r.Limit > 0 && p.Masters > r.Limit {
			r.OverLimit = append(r.OverLimit, p)
		}
	}
	r.LimitHolds = len(r.OverLimit) == 0
	r.OK = r.LimitHolds && len(r.NoService) == 0
	return r
}

// Targets returns where the master of every store whose current master
// is on a down host goes, in store order: the choices of one Chooser
// (see there), the stores with the fewest live slots to go to choosing
// first, so that a store with a choice leaves room on the only host of
// a store without one. current is as for Down.
//
// This is the one rule of where masters go when hosts leave service.
// A drain of a host must take its targets from Targets(l, current,
// []string{host}), so that `cyrplan simulate --down HOST` always agrees
// with what the drain then does.
func Targets(l *layout.Layout, current map[string]string, down []string) []Move {
	return NewChooser(l, down).targets(current)
}

// Current returns store st's current master according to current (as
// for Down): its entry if that is one of the store's slots, else the
// preferred master.
func Current(st *layout.Store, current map[string]string) string {
	if sn, ok := current[st.Name]; ok && slices.Contains(st.Slots(), sn) {
		return sn
	}
	return st.Master
}

// Candidates returns the slots that store st's master may move to from
// slot from, in the order a failover picks them: every slot of the
// store but from, preferred master first, then the replicas in the
// layout's order. So a store on its preferred master goes to its first
// replica, and a store running backwards goes back to its preferred
// master.
func Candidates(st *layout.Store, from string) []string {
	var out []string
	for _, sn := range st.Slots() {
		if sn != from {
			out = append(out, sn)
		}
	}
	return out
}

// Chooser picks new masters for stores whose master is on a down host,
// keeping count of how many masters of each down host it has sent to
// each other host. For one store it takes the first of its Candidates
// on a live host, unless that host already takes failover.maxPerHost
// of the masters of the store's down host: then the next live
// candidate whose host has room (Spread). When no live candidate's host
// has room it takes the first live one anyway (OverLimit), and when no
// candidate is live the store has no new master (NoLiveSlot).
//
// The order in which stores are chosen matters once a host fills up;
// Targets fixes it.
type Chooser struct {
	l     *layout.Layout
	down  map[string]bool
	limit int
	taken map[[2]string]int // (down host, new master's host) -> masters
}

// NewChooser returns a Chooser for layout l with the hosts named by
// down out of service.
func NewChooser(l *layout.Layout, down []string) *Chooser {
	c := &Chooser{l: l, down: map[string]bool{}, limit: l.Failover.MaxPerHost, taken: map[[2]string]int{}}
	for _, h := range down {
		if l.Hosts[h] != nil {
			c.down[h] = true
		}
	}
	return c
}

// IsDown reports whether host is out of service.
func (c *Chooser) IsDown(host string) bool { return c.down[host] }

// live returns the candidates of st from slot from that are on live
// hosts, and the ones before the first live one (on down hosts).
func (c *Chooser) live(st *layout.Store, from string) (live, skipped []string) {
	for _, sn := range Candidates(st, from) {
		switch {
		case !c.down[c.l.Slots[sn].Host]:
			live = append(live, sn)
		case len(live) == 0:
			skipped = append(skipped, sn)
		}
	}
	return live, skipped
}

// Choose picks the new master of store st, whose master is now slot
// from (on a down host), and counts it. It moves nothing if from's host
// is up: the Move it returns then has the reason "" and no target.
func (c *Chooser) Choose(st *layout.Store, from string) Move {
	l := c.l
	fromHost := l.Slots[from].Host
	m := Move{Store: st.Name, FromSlot: from, FromHost: fromHost}
	if !c.down[fromHost] {
		return m
	}
	live, skipped := c.live(st, from)
	if len(live) == 0 {
		m.Reason, m.Note = NoLiveSlot, "no live slot: the store loses service"
		return m
	}
	pick := ""
	var full []string // hosts of live candidates passed over for the limit
	for _, sn := range live {
		h := l.Slots[sn].Host
		if c.limit == 0 || c.taken[[2]string{fromHost, h}] < c.limit {
			pick = sn
			break
		}
		if !slices.Contains(full, h) {
			full = append(full, h)
		}
	}
	switch {
	case pick == "":
		pick = live[0]
		h := l.Slots[pick].Host
		m.Reason = OverLimit
		m.Note = fmt.Sprintf("OVER THE LIMIT: %s takes %d of %s's masters (the limit is %d); no live slot's host has room",
			h, c.taken[[2]string{fromHost, h}]+1, fromHost, c.limit)
	case len(full) > 0:
		m.Reason = Spread
		m.Note = fmt.Sprintf("spread: %s already %s %d of %s's masters",
			strings.Join(full, ", "), plural(len(full), "takes", "take"), c.limit, fromHost)
	case len(skipped) > 0:
		m.Reason = NextLive
		parts := make([]string, len(skipped))
		for i, sn := range skipped {
			parts[i] = fmt.Sprintf("%s on %s", sn, l.Slots[sn].Host)
		}
		m.Note = fmt.Sprintf("first live slot: %s %s down", strings.Join(parts, ", "), plural(len(skipped), "is", "are"))
	case pick == st.Master:
		m.Reason, m.Note = PreferredMaster, "back to its preferred master"
	default:
		m.Reason, m.Note = FirstReplica, "first replica"
	}
	m.ToSlot, m.ToHost = pick, l.Slots[pick].Host
	c.taken[[2]string{fromHost, m.ToHost}]++
	return m
}

// Pairs returns how many masters of each down host the Chooser has
// sent to each other host, by down host then target host, in host
// order.
func (c *Chooser) Pairs() []Pair {
	out := make([]Pair, 0, len(c.taken))
	for k, n := range c.taken {
		out = append(out, Pair{From: k[0], To: k[1], Masters: n})
	}
	num := func(h string) int { return c.l.Hosts[h].Number }
	slices.SortFunc(out, func(a, b Pair) int {
		return cmp.Or(cmp.Compare(num(a.From), num(b.From)), cmp.Compare(num(a.To), num(b.To)))
	})
	return out
}

// targets chooses for every store whose current master is on a down
// host (see Targets) and returns the moves in store order.
func (c *Chooser) targets(current map[string]string) []Move {
	l := c.l
	type pending struct {
		index int // in store order
		st    *layout.Store
		from  string
		live  int
	}
	var todo []pending
	for _, name := range l.StoreNames() {
		st := l.Stores[name]
		from := Current(st, current)
		if !c.down[l.Slots[from].Host] {
			continue
		}
		live, _ := c.live(st, from)
		todo = append(todo, pending{index: len(todo), st: st, from: from, live: len(live)})
	}
	order := slices.Clone(todo)
	slices.SortStableFunc(order, func(a, b pending) int { return cmp.Compare(a.live, b.live) })
	out := make([]Move, len(todo))
	for _, p := range order {
		out[p.index] = c.Choose(p.st, p.from)
	}
	return out
}

// KnownHosts splits down into the names of l's hosts and the names
// that are not hosts of l, each once, in the order given.
func KnownHosts(l *layout.Layout, down []string) (known, unknown []string) {
	seen := map[string]bool{}
	for _, h := range down {
		if seen[h] {
			continue
		}
		seen[h] = true
		if l.Hosts[h] != nil {
			known = append(known, h)
		} else {
			unknown = append(unknown, h)
		}
	}
	return known, unknown
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
