package simulate_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/simulate"
)

func loadExample(t *testing.T) *layout.Layout {
	t.Helper()
	l, err := layout.Load("../../layout")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// loadCUE loads a layout of hosts imap1..imapN (N = hosts) with the
// given stores (CUE struct fields) and failover limit (0: none),
// without the layout's own spread check, as simulate does.
func loadCUE(t *testing.T, hosts int, limit int, stores string) *layout.Layout {
	t.Helper()
	var b strings.Builder
	b.WriteString("package layout\n\ndomain: \"internal\"\ncyrus: \"3.6.1\": prefix: \"/usr/lib/cyrus\"\ndefaultCyrus: \"3.6.1\"\nhosts: {\n")
	for i := 1; i <= hosts; i++ {
		fmt.Fprintf(&b, "\timap%d: {number: %d, address: \"10.0.0.%d\"}\n", i, i, i)
	}
	b.WriteString("}\nstores: {\n" + stores + "\n}\n")
	if limit > 0 {
		fmt.Fprintf(&b, "failover: maxPerHost: %d\n", limit)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fleet.cue"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := layout.Load(dir, layout.NoSpreadLimit())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return l
}

// move is a Move in short: "store: from -> to (reason)".
func move(m simulate.Move) string {
	to := "none"
	if m.ToSlot != "" {
		to = m.ToSlot + "@" + m.ToHost
	}
	return fmt.Sprintf("%s: %s@%s -> %s (%s)", m.Store, m.FromSlot, m.FromHost, to, m.Reason)
}

func moves(r *simulate.Result) []string {
	out := []string{}
	for _, m := range r.Stores {
		out = append(out, move(m))
	}
	return out
}

// masters is "host before>after" for the hosts whose count changes or
// that are down.
func masters(r *simulate.Result) []string {
	out := []string{}
	for _, h := range r.Hosts {
		if h.Before != h.After || h.Down {
			d := ""
			if h.Down {
				d = " down"
			}
			out = append(out, fmt.Sprintf("%s %d>%d%s", h.Host, h.Before, h.After, d))
		}
	}
	return out
}

type want struct {
	moves         []string
	masters       []string
	noLiveReplica []string
	noService     []string
	overLimit     []simulate.Pair
	ok            bool
}

func check(t *testing.T, r *simulate.Result, w want) {
	t.Helper()
	if got := moves(r); !slices.Equal(got, w.moves) {
		t.Errorf("moves:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(w.moves, "\n  "))
	}
	if w.masters != nil {
		if got := masters(r); !slices.Equal(got, w.masters) {
			t.Errorf("masters %q, want %q", got, w.masters)
		}
	}
	if !slices.Equal(r.NoLiveReplica, orEmpty(w.noLiveReplica)) {
		t.Errorf("no live replica %q, want %q", r.NoLiveReplica, w.noLiveReplica)
	}
	if !slices.Equal(r.NoService, orEmpty(w.noService)) {
		t.Errorf("no service %q, want %q", r.NoService, w.noService)
	}
	if !slices.Equal(r.OverLimit, orEmptyPairs(w.overLimit)) {
		t.Errorf("over the limit %v, want %v", r.OverLimit, w.overLimit)
	}
	if r.LimitHolds != (len(w.overLimit) == 0) {
		t.Errorf("limit holds %v with %v over it", r.LimitHolds, r.OverLimit)
	}
	if r.OK != w.ok {
		t.Errorf("ok %v, want %v", r.OK, w.ok)
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyPairs(s []simulate.Pair) []simulate.Pair {
	if s == nil {
		return []simulate.Pair{}
	}
	return s
}

// TestSimulateExample takes hosts of the example layout down.
func TestSimulateExample(t *testing.T) {
	l := loadExample(t)
	for _, tc := range []struct {
		name    string
		current map[string]string
		down    []string
		want    want
	}{{
		name: "one host",
		down: []string{"imap6"},
		want: want{
			moves: []string{
				"store17: slot602@imap6 -> slot701@imap7 (first-replica)",
				"store23: slot608@imap6 -> slot308@imap3 (first-replica)",
			},
			masters:       []string{"imap3 2>3", "imap6 2>0 down", "imap7 2>3"},
			noLiveReplica: []string{"store15", "store17", "store22", "store23"},
			ok:            true,
		},
	}, {
		name: "two hosts",
		down: []string{"imap7", "imap6"},
		want: want{
			moves: []string{
				"store17: slot602@imap6 -> none (no-live-slot)",
				"store18: slot702@imap7 -> slot802@imap8 (first-replica)",
				"store19: slot704@imap7 -> slot303@imap3 (first-replica)",
				"store23: slot608@imap6 -> slot308@imap3 (first-replica)",
			},
			masters:       []string{"imap3 2>4", "imap6 2>0 down", "imap7 2>0 down", "imap8 2>3"},
			noLiveReplica: []string{"store13", "store15", "store18", "store19", "store22", "store23"},
			noService:     []string{"store17"},
			ok:            false,
		},
	}, {
		// imap6's two stores run backwards: it holds replicas only.
		name:    "a host with no masters",
		current: map[string]string{"store17": "slot701", "store23": "slot308"},
		down:    []string{"imap6"},
		want: want{
			moves:         []string{},
			masters:       []string{"imap6 0>0 down"},
			noLiveReplica: []string{"store15", "store17", "store22", "store23"},
			ok:            true,
		},
	}, {
		name: "every slot of a store down",
		down: []string{"imap4", "imap7"},
		want: want{
			moves: []string{
				"store13: slot405@imap4 -> none (no-live-slot)",
				"store14: slot402@imap4 -> slot801@imap8 (first-replica)",
				"store18: slot702@imap7 -> slot802@imap8 (first-replica)",
				"store19: slot704@imap7 -> slot303@imap3 (first-replica)",
			},
			masters:       []string{"imap3 2>3", "imap4 2>0 down", "imap7 2>0 down", "imap8 2>4"},
			noLiveReplica: []string{"store11", "store14", "store17", "store18", "store19", "store21"},
			noService:     []string{"store13"},
			ok:            false,
		},
	}, {
		// store23 runs on its replica on imap3: losing imap3 sends it
		// back to its preferred master.
		name:    "back to the preferred master",
		current: map[string]string{"store23": "slot308"},
		down:    []string{"imap3"},
		want: want{
			moves: []string{
				"store11: slot301@imap3 -> slot401@imap4 (first-replica)",
				"store12: slot302@imap3 -> slot501@imap5 (first-replica)",
				"store23: slot308@imap3 -> slot608@imap6 (preferred-master)",
			},
			masters:       []string{"imap3 3>0 down", "imap4 2>3", "imap5 2>3", "imap6 1>2"},
			noLiveReplica: []string{"store11", "store12", "store19", "store23"},
			ok:            true,
		},
	}, {
		name:    "a current master that is not the store's is ignored",
		current: map[string]string{"store23": "slot701", "nosuchstore": "slot308"},
		down:    []string{"imap6", "imap99"},
		want: want{
			moves: []string{
				"store17: slot602@imap6 -> slot701@imap7 (first-replica)",
				"store23: slot608@imap6 -> slot308@imap3 (first-replica)",
			},
			ok:            true,
			noLiveReplica: []string{"store15", "store17", "store22", "store23"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := simulate.Down(l, tc.current, tc.down)
			check(t, r, tc.want)
			if got := simulate.Targets(l, tc.current, tc.down); !reflect.DeepEqual(got, r.Stores) {
				t.Errorf("Targets %v, Down's stores %v", got, r.Stores)
			}
			if len(r.Hosts) != len(l.Hosts) {
				t.Errorf("%d hosts in the result, want all %d", len(r.Hosts), len(l.Hosts))
			}
		})
	}
}

// TestSimulateSpread checks how masters of one down host spread over
// the replicas when the first choice is full.
func TestSimulateSpread(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hosts  int
		limit  int
		stores string
		down   []string
		want   want
		notes  []string // substrings of the notes, in store order
	}{{
		name: "second replicas take the overflow", hosts: 4, limit: 1,
		stores: `s1: {master: "slot101", replicas: ["slot201", "slot301"], ip: master: "10.1.0.1"}
	s2: {master: "slot102", replicas: ["slot202", "slot302"], ip: master: "10.1.0.2"}
	s3: {master: "slot103", replicas: ["slot203", "slot401"], ip: master: "10.1.0.3"}`,
		down: []string{"imap1"},
		want: want{
			moves: []string{
				"s1: slot101@imap1 -> slot201@imap2 (first-replica)",
				"s2: slot102@imap1 -> slot302@imap3 (spread)",
				"s3: slot103@imap1 -> slot401@imap4 (spread)",
			},
			masters: []string{"imap1 3>0 down", "imap2 0>1", "imap3 0>1", "imap4 0>1"},
			ok:      true,
		},
		notes: []string{"first replica", "spread: imap2 already takes 1 of imap1's masters", "spread: imap2 already takes 1"},
	}, {
		// In store order s1 would take imap2, leaving s2 nowhere.
		name: "a store without a choice chooses first", hosts: 3, limit: 1,
		stores: `s1: {master: "slot101", replicas: ["slot201", "slot301"], ip: master: "10.1.0.1"}
	s2: {master: "slot102", replicas: ["slot202"], ip: master: "10.1.0.2"}`,
		down: []string{"imap1"},
		want: want{
			moves: []string{
				"s1: slot101@imap1 -> slot301@imap3 (spread)",
				"s2: slot102@imap1 -> slot202@imap2 (first-replica)",
			},
			noLiveReplica: []string{"s2"},
			ok:            true,
		},
	}, {
		name: "no room anywhere breaks the limit", hosts: 3, limit: 1,
		stores: `s1: {master: "slot101", replicas: ["slot201"], ip: master: "10.1.0.1"}
	s2: {master: "slot102", replicas: ["slot202", "slot301"], ip: master: "10.1.0.2"}
	s3: {master: "slot103", replicas: ["slot203", "slot302"], ip: master: "10.1.0.3"}`,
		down: []string{"imap1"},
		want: want{
			moves: []string{
				"s1: slot101@imap1 -> slot201@imap2 (first-replica)",
				"s2: slot102@imap1 -> slot301@imap3 (spread)",
				"s3: slot103@imap1 -> slot203@imap2 (over-limit)",
			},
			noLiveReplica: []string{"s1"},
			overLimit:     []simulate.Pair{{From: "imap1", To: "imap2", Masters: 2}},
			ok:            false,
		},
		notes: []string{"", "", "OVER THE LIMIT: imap2 takes 2 of imap1's masters (the limit is 1)"},
	}, {
		name: "no limit, no spreading", hosts: 3,
		stores: `s1: {master: "slot101", replicas: ["slot201", "slot301"], ip: master: "10.1.0.1"}
	s2: {master: "slot102", replicas: ["slot202", "slot302"], ip: master: "10.1.0.2"}`,
		down: []string{"imap1"},
		want: want{
			moves: []string{
				"s1: slot101@imap1 -> slot201@imap2 (first-replica)",
				"s2: slot102@imap1 -> slot202@imap2 (first-replica)",
			},
			masters: []string{"imap1 2>0 down", "imap2 0>2"},
			ok:      true,
		},
	}, {
		name: "a down first replica passes to the next live one", hosts: 3, limit: 1,
		stores: `s1: {master: "slot101", replicas: ["slot201", "slot301"], ip: master: "10.1.0.1"}`,
		down:   []string{"imap1", "imap2"},
		want: want{
			moves:         []string{"s1: slot101@imap1 -> slot301@imap3 (next-live)"},
			noLiveReplica: []string{"s1"},
			ok:            true,
		},
		notes: []string{"first live slot: slot201 on imap2 is down"},
	}, {
		// The limit is per down host: imap3 takes one master of each.
		name: "the limit counts each down host apart", hosts: 3, limit: 1,
		stores: `s1: {master: "slot101", replicas: ["slot301"], ip: master: "10.1.0.1"}
	s2: {master: "slot201", replicas: ["slot302"], ip: master: "10.1.0.2"}`,
		down: []string{"imap1", "imap2"},
		want: want{
			moves: []string{
				"s1: slot101@imap1 -> slot301@imap3 (first-replica)",
				"s2: slot201@imap2 -> slot302@imap3 (first-replica)",
			},
			masters:       []string{"imap1 1>0 down", "imap2 1>0 down", "imap3 0>2"},
			noLiveReplica: []string{"s1", "s2"},
			ok:            true,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l := loadCUE(t, tc.hosts, tc.limit, tc.stores)
			r := simulate.Down(l, nil, tc.down)
			check(t, r, tc.want)
			for i, n := range tc.notes {
				if !strings.Contains(r.Stores[i].Note, n) {
					t.Errorf("%s: note %q, want it to hold %q", r.Stores[i].Store, r.Stores[i].Note, n)
				}
			}
			if got := simulate.Targets(l, nil, tc.down); !reflect.DeepEqual(got, r.Stores) {
				t.Errorf("Targets %v, Down's stores %v", got, r.Stores)
			}
		})
	}
}

// TestSimulateJSON checks the JSON form: camelCase, every field present
// even when empty.
func TestSimulateJSON(t *testing.T) {
	r := simulate.Down(loadExample(t), nil, []string{"imap6"})
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"down", "stores", "hosts", "noLiveReplica", "noService", "limit", "worst", "overLimit", "limitHolds", "ok"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q in %s", k, data)
		}
	}
	if doc["noService"] == nil || doc["overLimit"] == nil {
		t.Errorf("empty lists are null: %s", data)
	}
	for _, s := range []string{`"fromSlot":"slot602"`, `"toHost":"imap7"`, `"reason":"first-replica"`, `"worst":{"from":"imap6","to":"imap3","masters":1}`} {
		if !strings.Contains(string(data), s) {
			t.Errorf("no %s in %s", s, data)
		}
	}
}

func TestKnownHosts(t *testing.T) {
	known, unknown := simulate.KnownHosts(loadExample(t), []string{"imap6", "imap66", "imap6", "imap3", "x"})
	if !slices.Equal(known, []string{"imap6", "imap3"}) || !slices.Equal(unknown, []string{"imap66", "x"}) {
		t.Errorf("known %q unknown %q", known, unknown)
	}
}

// checkInvariants checks what must hold of any simulation, recomputed
// from the layout without the package's help.
func checkInvariants(t *testing.T, l *layout.Layout, current map[string]string, down []string, r *simulate.Result) {
	t.Helper()
	isDown := map[string]bool{}
	for _, h := range down {
		isDown[h] = true
	}
	host := func(sn string) string { return l.Slots[sn].Host }
	cur := func(st *layout.Store) string {
		if sn, ok := current[st.Name]; ok && slices.Contains(st.Slots(), sn) {
			return sn
		}
		return st.Master
	}

	// Exactly the masters the down hosts held move, from where they were.
	var wantMoved []string
	before := map[string]int{}
	live := 0
	var wantNoService, wantNoReplica []string
	for _, name := range l.StoreNames() {
		st := l.Stores[name]
		before[host(cur(st))]++
		if isDown[host(cur(st))] {
			wantMoved = append(wantMoved, name)
		}
		up := 0
		for _, sn := range st.Slots() {
			if !isDown[host(sn)] {
				up++
			}
		}
		switch up {
		case 0:
			wantNoService = append(wantNoService, name)
		case 1:
			wantNoReplica = append(wantNoReplica, name)
			live++
		default:
			live++
		}
	}
	var gotMoved []string
	into := map[string]int{}
	pairs := map[[2]string]int{}
	for _, m := range r.Stores {
		gotMoved = append(gotMoved, m.Store)
		st := l.Stores[m.Store]
		if m.FromSlot != cur(st) || m.FromHost != host(m.FromSlot) {
			t.Errorf("%s: moves from %s on %s, but its master is %s", m.Store, m.FromSlot, m.FromHost, cur(st))
		}
		if m.ToSlot == "" {
			if m.Reason != simulate.NoLiveSlot || m.ToHost != "" {
				t.Errorf("%s: no target but reason %q, host %q", m.Store, m.Reason, m.ToHost)
			}
			continue
		}
		if !slices.Contains(st.Slots(), m.ToSlot) || m.ToSlot == m.FromSlot || m.ToHost != host(m.ToSlot) {
			t.Errorf("%s: moves to %s on %s, not another slot of its own", m.Store, m.ToSlot, m.ToHost)
		}
		if isDown[m.ToHost] {
			t.Errorf("%s: moves onto down host %s", m.Store, m.ToHost)
		}
		if l.Failover.MaxPerHost == 0 && m.Reason != simulate.FirstReplica && m.Reason != simulate.PreferredMaster && m.Reason != simulate.NextLive {
			t.Errorf("%s: reason %q without a limit", m.Store, m.Reason)
		}
		into[m.ToHost]++
		pairs[[2]string{m.FromHost, m.ToHost}]++
	}
	if !slices.Equal(gotMoved, wantMoved) {
		t.Errorf("moved %q, want the masters of %q: %q", gotMoved, down, wantMoved)
	}
	if !slices.Equal(r.NoService, orEmpty(wantNoService)) {
		t.Errorf("no service %q, want %q", r.NoService, wantNoService)
	}
	if !slices.Equal(r.NoLiveReplica, orEmpty(wantNoReplica)) {
		t.Errorf("no live replica %q, want %q", r.NoLiveReplica, wantNoReplica)
	}

	// Masters after: none on a down host, the rest stay or arrive, and
	// they add up to the stores with a live slot.
	sum := 0
	for _, h := range r.Hosts {
		sum += h.After
		if h.Before != before[h.Host] {
			t.Errorf("host %s: %d masters before, want %d", h.Host, h.Before, before[h.Host])
		}
		if h.Down != isDown[h.Host] {
			t.Errorf("host %s: down %v", h.Host, h.Down)
		}
		want := before[h.Host] + into[h.Host]
		if isDown[h.Host] {
			want = 0
		}
		if h.After != want {
			t.Errorf("host %s: %d masters after, want %d", h.Host, h.After, want)
		}
	}
	if len(r.Hosts) != len(l.Hosts) {
		t.Errorf("%d hosts, want %d", len(r.Hosts), len(l.Hosts))
	}
	if sum != live {
		t.Errorf("%d masters after, want %d (the stores with a live slot)", sum, live)
	}

	// The limit: when the result says it holds, it does; when not, it
	// names the pairs over it.
	limit := l.Failover.MaxPerHost
	var over []simulate.Pair
	for _, p := range r.OverLimit {
		over = append(over, p)
		if pairs[[2]string{p.From, p.To}] != p.Masters || p.Masters <= limit {
			t.Errorf("pair %v over the limit %d, counted %d", p, limit, pairs[[2]string{p.From, p.To}])
		}
	}
	// The rule: each store takes the first live slot of its failover
	// order whose host had room, so every live slot it passed over is on
	// a host that ends up full (counts only grow); with no room
	// anywhere, the first live slot, every live host full.
	overMoves := 0
	for _, m := range r.Stores {
		if m.ToSlot == "" {
			continue
		}
		st := l.Stores[m.Store]
		var liveSlots []string
		for _, sn := range simulate.Candidates(st, m.FromSlot) {
			if !isDown[host(sn)] {
				liveSlots = append(liveSlots, sn)
			}
		}
		full := func(sn string) bool { return limit > 0 && pairs[[2]string{m.FromHost, host(sn)}] >= limit }
		if m.Reason == simulate.OverLimit {
			overMoves++
			if m.ToSlot != liveSlots[0] || !slices.ContainsFunc(liveSlots, func(sn string) bool { return full(sn) }) {
				t.Errorf("%s: over the limit to %s, but live %q", m.Store, m.ToSlot, liveSlots)
			}
			for _, sn := range liveSlots {
				if !full(sn) {
					t.Errorf("%s: over the limit, but %s's host %s has room", m.Store, sn, host(sn))
				}
			}
			continue
		}
		i := slices.Index(liveSlots, m.ToSlot)
		for _, sn := range liveSlots[:i] {
			if !full(sn) {
				t.Errorf("%s: goes to %s, passing over %s on %s, which has room", m.Store, m.ToSlot, sn, host(sn))
			}
		}
		if (i > 0) != (m.Reason == simulate.Spread) {
			t.Errorf("%s: goes to live slot %d of %q, reason %s", m.Store, i, liveSlots, m.Reason)
		}
	}
	if (overMoves == 0) != r.LimitHolds {
		t.Errorf("%d moves over the limit, limit holds %v", overMoves, r.LimitHolds)
	}

	n := 0
	for k, c := range pairs {
		if limit > 0 && c > limit {
			n++
			if r.LimitHolds {
				t.Errorf("the limit %d holds, but %d of %s's masters go to %s", limit, c, k[0], k[1])
			}
		}
	}
	if n != len(over) || r.LimitHolds != (n == 0) {
		t.Errorf("%d pairs over the limit, the result names %v (holds %v)", n, over, r.LimitHolds)
	}
	if r.OK != (r.LimitHolds && len(wantNoService) == 0) {
		t.Errorf("ok %v", r.OK)
	}
	if got := simulate.Targets(l, current, down); !reflect.DeepEqual(got, r.Stores) {
		t.Errorf("Targets disagrees with Down:\n%v\n%v", got, r.Stores)
	}
}

// TestSimulateFleets takes every host (and every pair of hosts) of
// generated fleets down, with every store on its preferred master and
// with some running backwards, and checks the invariants.
func TestSimulateFleets(t *testing.T) {
	sizes := []fleetgen.Size{{Name: "2x2", Hosts: 2, SlotsPerHost: 2}, {Name: "3x8", Hosts: 3, SlotsPerHost: 8}, {Name: "5x10", Hosts: 5, SlotsPerHost: 10}, {Name: "7x4", Hosts: 7, SlotsPerHost: 4}, fleetgen.Sizes[0]}
	for _, sz := range sizes {
		t.Run(sz.Name, func(t *testing.T) {
			l, err := layout.Load(fleetgen.TempDir(t, sz.Hosts, sz.SlotsPerHost))
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(sz.Hosts), uint64(sz.SlotsPerHost)))
			backwards := map[string]string{}
			for _, name := range l.StoreNames() {
				if st := l.Stores[name]; rng.IntN(3) == 0 {
					backwards[name] = st.Replicas[0]
				}
			}
			hosts := l.HostNames()
			for i, h := range hosts {
				// One host down, every store on its preferred master:
				// exactly its masters move, each to its first replica,
				// within the layout's limit.
				r := simulate.Down(l, nil, []string{h})
				checkInvariants(t, l, nil, []string{h}, r)
				if !r.OK {
					t.Errorf("%s down: not ok: %v %v", h, r.NoService, r.OverLimit)
				}
				for _, m := range r.Stores {
					if m.Reason != simulate.FirstReplica {
						t.Errorf("%s down: %s", h, move(m))
					}
				}
				if got, want := len(r.Stores), sz.SlotsPerHost/2; got != want {
					t.Errorf("%s down: %d masters move, want %d", h, got, want)
				}

				checkInvariants(t, l, backwards, []string{h}, simulate.Down(l, backwards, []string{h}))
				for _, h2 := range hosts[i+1:] {
					if len(hosts) > 10 {
						break
					}
					down := []string{h, h2}
					checkInvariants(t, l, nil, down, simulate.Down(l, nil, down))
					checkInvariants(t, l, backwards, down, simulate.Down(l, backwards, down))
				}
			}
		})
	}
}

// TestSimulateRandom checks the invariants on random layouts whose
// stores have up to four slots, so that the limit has choices to make
// and sometimes none.
func TestSimulateRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		l := randomLayout(rng)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			current := map[string]string{}
			for _, name := range l.StoreNames() {
				st := l.Stores[name]
				if rng.IntN(4) == 0 {
					current[name] = st.Slots()[rng.IntN(len(st.Slots()))]
				}
			}
			hosts := l.HostNames()
			var down []string
			for _, h := range hosts {
				if rng.IntN(3) == 0 {
					down = append(down, h)
				}
			}
			checkInvariants(t, l, current, down, simulate.Down(l, current, down))
			for _, h := range hosts {
				checkInvariants(t, l, current, []string{h}, simulate.Down(l, current, []string{h}))
			}
		})
	}
}

// randomLayout builds a layout in memory: only what simulate reads.
func randomLayout(rng *rand.Rand) *layout.Layout {
	nh := 3 + rng.IntN(6)
	l := &layout.Layout{Hosts: map[string]*layout.Host{}, Slots: map[string]*layout.Slot{}, Stores: map[string]*layout.Store{},
		Failover: layout.Failover{MaxPerHost: rng.IntN(3)}}
	var names []string
	for h := 1; h <= nh; h++ {
		n := fmt.Sprintf("imap%d", h)
		l.Hosts[n] = &layout.Host{Name: n, Number: h}
		names = append(names, n)
	}
	next := map[string]int{}
	slot := func(h int, store string, role layout.Role) string {
		host := names[h]
		next[host]++
		sn := fmt.Sprintf("slot%d%02d", h+1, next[host])
		l.Slots[sn] = &layout.Slot{Name: sn, Host: host, Partition: next[host], Store: store, Role: role}
		return sn
	}
	for s := 1; s <= 4+rng.IntN(30); s++ {
		name := fmt.Sprintf("store%d", s)
		k := 2 + rng.IntN(min(3, nh-1))
		hs := rng.Perm(nh)[:k]
		st := &layout.Store{Name: name, Master: slot(hs[0], name, layout.Master)}
		for _, h := range hs[1:] {
			st.Replicas = append(st.Replicas, slot(h, name, layout.Replica))
		}
		l.Stores[name] = st
	}
	return l
}
