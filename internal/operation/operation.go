// Package operation plans fleet operations as ordered steps, each with
// the gate it must pass: a failover of a store, a drain of a host (the
// failovers of every store whose master is there, spread as simulate
// predicts), a failback of stores running backwards. It is pure: the
// live roles come in as values; package fleet executes the steps, with a
// journal on the hosts, so that a stopped operation resumes.
package operation

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/simulate"
)

// Format is the version of an operation plan's JSON form.
const Format = 1

// Kind marks an operation plan file (a config plan has none).
const Kind = "operation"

// Do is what a step does.
type Do string

// The steps of an operation.
const (
	Stop    Do = "stop"    // stop the slot: no more writes; it releases its floating address
	SendLog Do = "drain"   // send what the stopped master logged to Peer (one-shot sync_client)
	Record  Do = "record"  // record Role as the slot's current role on its host
	Restart Do = "restart" // restart the slot in its recorded role
	Start   Do = "start"   // start the slot in its recorded role
	// Resume restarts the master's rolling sync_client (its master
	// process starts it again at once), which otherwise waits out its
	// retries after its replicas were down: replication resumes at once.
	Resume Do = "resume"
)

// Gate is what must hold after a step before the next one runs.
type Gate string

// The gates.
const (
	NoGate  Gate = ""
	Banner  Gate = "banner"  // the slot's IMAP banner names it
	Drained Gate = "drained" // the master's log for the peer is empty
	// Canary: a message appended through the store's floating master
	// address reaches every replica of the store within a deadline.
	Canary Gate = "canary"
)

// Step is one step of an operation.
type Step struct {
	N     int         `json:"n"`
	Store string      `json:"store"`
	Slot  string      `json:"slot"`
	Host  string      `json:"host"`
	Do    Do          `json:"do"`
	Peer  string      `json:"peer"` // Drain: the slot the log goes to
	Role  layout.Role `json:"role"` // Record: the role recorded
	Gate  Gate        `json:"gate"`
	Says  string      `json:"says"` // the step in words
	// Wave groups the stores of an operation that run at once (upgrade
	// --waves): the steps of one store run in order, the stores of a wave
	// side by side, and a wave begins when the one before has ended. 0:
	// every step in order.
	Wave int `json:"wave"`
}

// Plan is an operation plan: what apply FILE runs, step by step.
type Plan struct {
	Format    int            `json:"format"`
	Kind      string         `json:"kind"`
	ID        string         `json:"id"`
	Operation string         `json:"operation"` // the command that made it: "failover store23", "drain imap6"
	Version   string         `json:"cyrplanVersion"`
	Commit    string         `json:"commit"`
	Layout    string         `json:"layoutHash"`
	Transport plan.Transport `json:"transport"`
	// Roles are the roles the involved slots recorded when the plan was
	// made: a plan not yet begun is applied only while they still hold.
	Roles map[string]layout.Role `json:"roles"`
	Down  []string               `json:"down"` // hosts that did not answer (a forced failover)
	Steps []*Step                `json:"steps"`
	// Warnings say what the operation may lose (a forced failover).
	Warnings []string `json:"warnings"`
	// Simulation is, for a drain, what simulate --down says of the host:
	// the masters per host before and after; nil otherwise.
	Simulation *simulate.Result `json:"simulation"`
}

// Live is what the hosts say of the stores an operation touches.
type Live struct {
	Roles map[string]layout.Role // recorded (or preferred) role of every slot that answered
	Down  map[string]bool        // slots whose host did not answer
}

// Current is each store's one current master (a store with none, or two,
// is left out).
func (lv Live) Current(l *layout.Layout) map[string]string {
	out := map[string]string{}
	for _, name := range l.StoreNames() {
		if m := lv.masters(l.Stores[name]); len(m) == 1 {
			out[name] = m[0]
		}
	}
	return out
}

// masters returns the slots of st that run as master, in store order.
func (lv Live) masters(st *layout.Store) []string {
	var out []string
	for _, sn := range st.Slots() {
		if lv.Roles[sn] == layout.Master {
			out = append(out, sn)
		}
	}
	return out
}

// Failover plans moving st's master role to slot to ("" picks one: the
// preferred master if the store runs backwards, else its first replica
// that answers). force goes on while a slot's host is down. The steps
// stop the old masters (no more writes), drain their logs to the new
// master, record the roles, restart the new master (it takes the
// floating address) and start the old ones as its replicas, each with
// its gate. A slot that is master already and that others still claim
// to be (a host back after a forced failover) only gets them back as
// its replicas: no drain, no restart.
func Failover(l *layout.Layout, st *layout.Store, lv Live, to string, force bool) ([]*Step, []string, error) {
	if to == "" {
		to = pick(st, lv)
	}
	if to == "" {
		return nil, nil, fmt.Errorf("store %s: no slot to promote (no replica answers)", st.Name)
	}
	if !slices.Contains(st.Slots(), to) {
		return nil, nil, fmt.Errorf("slot %s is not in store %s (%s)", to, st.Name, strings.Join(st.Slots(), ", "))
	}
	if lv.Down[to] {
		return nil, nil, fmt.Errorf("cannot promote %s: its host %s does not answer", to, l.Slots[to].Host)
	}
	masters := lv.masters(st)
	var old, down []string
	for _, m := range masters {
		if m != to {
			old = append(old, m)
		}
	}
	for _, sn := range st.Slots() {
		if lv.Down[sn] && sn != to {
			down = append(down, sn)
		}
	}
	if len(masters) == 1 && masters[0] == to && len(down) == 0 {
		return nil, nil, nil // already the master
	}
	if len(down) > 0 && !force {
		return nil, nil, fmt.Errorf("store %s: the host of %s does not answer; if it is down for good, run again with --force (what it has not replicated yet may be lost)",
			st.Name, strings.Join(down, ", "))
	}
	rejoin := lv.Roles[to] == layout.Master
	var steps []*Step
	add := func(s *Step) { s.Store, s.Host = st.Name, l.Slots[s.Slot].Host; steps = append(steps, s) }
	for _, m := range old {
		add(&Step{Slot: m, Do: Stop, Says: fmt.Sprintf("stop %s on %s (the old master: no more writes; releases %s)", m, l.Slots[m].Host, st.IP.Master)})
	}
	if !force && !rejoin {
		for _, m := range old {
			add(&Step{Slot: m, Do: SendLog, Peer: to, Gate: Drained, Says: fmt.Sprintf("drain %s's replication log to %s", m, to)})
		}
	}
	if !rejoin {
		add(&Step{Slot: to, Do: Record, Role: layout.Master, Says: fmt.Sprintf("record %s as master of %s", to, st.Name)})
	}
	for _, m := range old {
		add(&Step{Slot: m, Do: Record, Role: layout.Replica, Says: fmt.Sprintf("record %s as replica", m)})
	}
	if !rejoin {
		add(&Step{Slot: to, Do: Restart, Gate: Banner, Says: fmt.Sprintf("restart %s on %s as master (takes %s, announces it)", to, l.Slots[to].Host, st.IP.Master)})
	}
	for _, m := range old {
		add(&Step{Slot: m, Do: Start, Gate: Banner, Says: fmt.Sprintf("start %s on %s as replica", m, l.Slots[m].Host)})
	}
	if len(old) > 0 {
		add(&Step{Slot: to, Do: Resume, Gate: Canary, Says: fmt.Sprintf("resume replication: restart %s's sync_client toward its replicas", to)})
	}
	var warnings []string
	if len(down) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s: the host of %s does not answer: what it took in and had not replicated to %s is not on %s and may be lost; "+
			"when it is back it does not start as master while %s answers from %s (fencing): bring it back as replica with cyrplan failover %s --to %s",
			st.Name, strings.Join(down, ", "), to, to, st.IP.Master, l.Slots[to].Host, st.Name, to))
	}
	return steps, warnings, nil
}

// pick chooses the slot to promote.
func pick(st *layout.Store, lv Live) string {
	if m := lv.masters(st); len(m) == 1 && m[0] != st.Master && !lv.Down[st.Master] {
		return st.Master
	}
	for _, sn := range st.Slots() {
		if lv.Roles[sn] == layout.Replica && !lv.Down[sn] {
			return sn
		}
	}
	return ""
}

// Drain plans the failovers of every store whose current master is on
// host, store by store, each to the slot simulate.Targets chooses (so
// that the masters spread over many hosts within failover.maxPerHost):
// what `cyrplan simulate --down HOST` predicts is what a drain does.
func Drain(l *layout.Layout, lv Live, host string) ([]*Step, error) {
	var steps []*Step
	for _, mv := range simulate.Targets(l, lv.Current(l), []string{host}) {
		if mv.ToSlot == "" {
			return nil, fmt.Errorf("store %s has no slot on another host that answers: %s cannot be drained", mv.Store, host)
		}
		s, _, err := Failover(l, l.Stores[mv.Store], lv, mv.ToSlot, false)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s...)
	}
	return Number(steps), nil
}

// Failback plans moving every store that runs backwards (its master is
// not its preferred master) back, or with host only those whose
// preferred master is on host.
func Failback(l *layout.Layout, lv Live, host string) ([]*Step, error) {
	var steps []*Step
	for _, name := range l.StoreNames() {
		st := l.Stores[name]
		m := lv.masters(st)
		if len(m) != 1 || m[0] == st.Master || (host != "" && l.Slots[st.Master].Host != host) {
			continue
		}
		s, _, err := Failover(l, st, lv, st.Master, false)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s...)
	}
	return Number(steps), nil
}

// WithoutCanary turns every canary gate of steps into the gate the step
// has without it (for fleets where no canary can be sent: --no-canary).
func WithoutCanary(steps []*Step) {
	for _, s := range steps {
		if s.Gate != Canary {
			continue
		}
		s.Gate = NoGate
		if s.Do == Apply {
			s.Gate = Banner
		}
	}
}

// Number gives steps their numbers, from 1.
func Number(steps []*Step) []*Step {
	for i, s := range steps {
		s.N = i + 1
	}
	return steps
}

// WriteText prints the plan for a terminal or a CI log.
func (p *Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Operation: %s\n", p.Operation)
	if len(p.Steps) == 0 {
		fmt.Fprintln(w, "\nNothing to do.")
		return
	}
	fmt.Fprintln(w)
	for _, s := range p.Steps {
		gate := ""
		if s.Gate != NoGate {
			gate = " [gate: " + gateWords(s) + "]"
		}
		wave := ""
		if s.Wave > 0 {
			wave = fmt.Sprintf("wave %d: ", s.Wave)
		}
		fmt.Fprintf(w, "  %2d. %s%s%s\n", s.N, wave, s.Says, gate)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "\nWarning: %s\n", warn)
	}
	if p.Simulation != nil {
		fmt.Fprintln(w)
		p.Simulation.WriteText(w)
	}
	fmt.Fprintf(w, "\nOperation: %d %s.\n", len(p.Steps), plural(len(p.Steps), "step", "steps"))
}

// WriteMarkdown prints the plan as a pull-request comment.
func (p *Plan) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "<!-- cyrplan:operation -->\n### cyrplan %s\n\n", p.Operation)
	if len(p.Steps) == 0 {
		fmt.Fprintln(w, "**Nothing to do.**")
		return
	}
	fmt.Fprintln(w, "| # | store | slot | host | step | gate |\n|---|---|---|---|---|---|")
	for _, s := range p.Steps {
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", s.N, s.Store, s.Slot, s.Host, s.Says, gateWords(s))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "\n:warning: %s\n", warn)
	}
}

func gateWords(s *Step) string {
	switch s.Gate {
	case Banner:
		return s.Slot + "'s IMAP banner answers"
	case Drained:
		return s.Slot + "'s log for " + s.Peer + " is empty"
	case Canary:
		return "a canary through " + s.Store + "'s floating master address reaches every replica"
	}
	return "none"
}

// WriteJSON writes the plan in its JSON form.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// IsOperation reports whether data is an operation plan file.
func IsOperation(data []byte) bool {
	var head struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(data, &head) == nil && head.Kind == Kind
}

// Decode reads an operation plan file, refusing other formats.
func Decode(data []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("not a cyrplan operation plan: %w", err)
	}
	if p.Kind != Kind || p.Format != Format {
		return nil, fmt.Errorf("operation plan format %d; this cyrplan reads format %d: make the plan again", p.Format, Format)
	}
	for i, s := range p.Steps {
		if s.N != i+1 {
			return nil, fmt.Errorf("step %d is numbered %d: the file was edited", i+1, s.N)
		}
	}
	return &p, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Apply is the step that applies the layout to one slot (or, for a slot
// that left the layout, to its host): its files are written (for a build
// change: those of the new build) and it is restarted in its recorded
// role, as cyrplan apply --target SLOT does. With Peer set, the layout
// is the transitional one of a slot move, where Peer still replicates.
const Apply Do = "apply"

// FullSync sends every user of the master to the replica Peer (one-shot
// sync_client -A): the initial copy of a new replica.
const FullSync Do = "fullsync"

// Move plans moving store st's replica from slot from (which left the
// layout) to slot to (which the layout lists now), creating before it
// destroys: the new slot is created and started as an additional
// replica, the master replicates to both, every user is copied to the
// new one (gate: its log is empty), the master then replicates to the
// new one only, and the old slot is stopped and its config removed; its
// mail data stays, for the operator to reclaim. The current master
// cannot be moved this way: fail it over first.
func Move(l *layout.Layout, st *layout.Store, lv Live, from, to string) ([]*Step, []string, error) {
	if !slices.Contains(st.Replicas, to) {
		return nil, nil, fmt.Errorf("the layout does not list %s as a replica of %s: change the layout first, then move", to, st.Name)
	}
	if slices.Contains(st.Slots(), from) {
		return nil, nil, fmt.Errorf("the layout still lists %s in %s: replace it with %s in the layout first, then move", from, st.Name, to)
	}
	master := st.Master
	if m := lv.masters(st); len(m) == 1 {
		master = m[0]
	}
	if lv.Roles[from] == layout.Master {
		return nil, nil, fmt.Errorf("%s is the master of %s now: fail it over first (cyrplan failover %s), then move it", from, st.Name, st.Name)
	}
	for _, sn := range append(st.Slots(), from) {
		if lv.Down[sn] {
			return nil, nil, fmt.Errorf("the host of %s does not answer: a move needs every slot of the store", sn)
		}
	}
	t, err := l.WithReplica(st.Name, from)
	if err != nil {
		return nil, nil, err
	}
	old := t.Slots[from]
	var steps []*Step
	add := func(s *Step) { s.Store, s.Host = st.Name, t.Slots[s.Slot].Host; steps = append(steps, s) }
	add(&Step{Slot: to, Do: Apply, Gate: Banner, Says: fmt.Sprintf("create %s on %s and start it as a replica of %s", to, l.Slots[to].Host, st.Name)})
	add(&Step{Slot: master, Do: Apply, Peer: from, Gate: Banner, Says: fmt.Sprintf("make %s replicate to %s as well as to %s (reload)", master, to, from)})
	add(&Step{Slot: master, Do: FullSync, Peer: to, Gate: Drained, Says: fmt.Sprintf("copy every user of %s to %s (sync_client -A)", master, to)})
	add(&Step{Slot: master, Do: Apply, Gate: Canary, Says: fmt.Sprintf("make %s replicate to %s only (reload)", master, to)})
	add(&Step{Slot: from, Do: Apply, Says: fmt.Sprintf("retire %s on %s: stop it and remove its config (its mail data stays)", from, old.Host)})
	notes := []string{fmt.Sprintf("%s: once moved, %s's mail data stays on %s in %s and %s: reclaim it when you no longer need it", st.Name, from, old.Host, old.Meta, old.Data)}
	return steps, notes, nil
}

// Upgrade plans moving store st from build from to build to (the one the
// layout pins now) through replication, never with both of its slots
// down: upgrade the replicas (apply, restart, gate), switch over to the
// first (the old master stays stopped), upgrade the old master and start
// it as replica, then switch back to the preferred master. A step that
// would make a slot replicate to an older Cyrus than its master is
// refused: a build change to an older version is not a rolling upgrade.
func Upgrade(l *layout.Layout, st *layout.Store, lv Live, from, to *layout.Build) ([]*Step, []string, error) {
	if from != nil && versionLess(to.Version, from.Version) {
		return nil, nil, fmt.Errorf("store %s: %s (Cyrus %s) is older than %s (Cyrus %s), which its slots run: during the upgrade a master would replicate to an older Cyrus; a downgrade is not a rolling upgrade",
			st.Name, to.Name, to.Version, from.Name, from.Version)
	}
	master := st.Master
	if m := lv.masters(st); len(m) == 1 {
		master = m[0]
	}
	for _, sn := range st.Slots() {
		if lv.Down[sn] {
			return nil, nil, fmt.Errorf("store %s: the host of %s does not answer: no rolling upgrade without every slot", st.Name, sn)
		}
	}
	var replicas []string
	for _, sn := range st.Slots() {
		if sn != master {
			replicas = append(replicas, sn)
		}
	}
	var steps []*Step
	add := func(s *Step) { s.Store, s.Host = st.Name, l.Slots[s.Slot].Host; steps = append(steps, s) }
	for _, r := range replicas {
		add(&Step{Slot: r, Do: Apply, Gate: Banner, Says: fmt.Sprintf("upgrade replica %s on %s to %s: write its files, restart it", r, l.Slots[r].Host, to.Name)})
	}
	// Switch over to the first replica; the old master stays stopped
	// until it runs the new build.
	r := replicas[0]
	add(&Step{Slot: master, Do: Stop, Says: fmt.Sprintf("stop %s on %s (the master: no more writes; releases %s)", master, l.Slots[master].Host, st.IP.Master)})
	add(&Step{Slot: master, Do: SendLog, Peer: r, Gate: Drained, Says: fmt.Sprintf("drain %s's replication log to %s", master, r)})
	add(&Step{Slot: r, Do: Record, Role: layout.Master, Says: fmt.Sprintf("record %s as master of %s", r, st.Name)})
	add(&Step{Slot: master, Do: Record, Role: layout.Replica, Says: fmt.Sprintf("record %s as replica", master)})
	add(&Step{Slot: r, Do: Restart, Gate: Banner, Says: fmt.Sprintf("restart %s on %s as master, on %s", r, l.Slots[r].Host, to.Name)})
	add(&Step{Slot: master, Do: Apply, Gate: Banner, Says: fmt.Sprintf("upgrade %s on %s to %s: write its files, start it as replica", master, l.Slots[master].Host, to.Name)})
	add(&Step{Slot: r, Do: Resume, Gate: Canary, Says: fmt.Sprintf("resume replication: restart %s's sync_client toward its replicas", r)})
	// Back to the preferred master.
	back := Live{Roles: map[string]layout.Role{}, Down: lv.Down}
	for _, sn := range st.Slots() {
		back.Roles[sn] = layout.Replica
	}
	back.Roles[r] = layout.Master
	if st.Master != r {
		s, _, err := Failover(l, st, back, st.Master, false)
		if err != nil {
			return nil, nil, err
		}
		steps = append(steps, s...)
	}
	var notes []string
	switch added, removed, known := layout.CatalogDiff(fromVersion(from), to.Version); {
	case from == nil:
		notes = append(notes, fmt.Sprintf("%s: the build its slots run now is not one of the layout's: option differences not shown", st.Name))
	case !known:
		notes = append(notes, fmt.Sprintf("%s: no option catalog for Cyrus %s or %s: option differences not shown", st.Name, from.Version, to.Version))
	case len(added)+len(removed) == 0:
		notes = append(notes, fmt.Sprintf("%s: Cyrus %s and %s know the same imapd.conf options", st.Name, from.Version, to.Version))
	default:
		notes = append(notes, fmt.Sprintf("%s: Cyrus %s adds the options %s and drops %s (against %s)", st.Name, to.Version,
			orNone(added), orNone(removed), from.Version))
	}
	return steps, notes, nil
}

func fromVersion(b *layout.Build) string {
	if b == nil {
		return ""
	}
	return b.Version
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// versionLess compares dotted versions numerically: 3.6.1 < 3.10.0.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			fmt.Sscan(pa[i], &x)
		}
		if i < len(pb) {
			fmt.Sscan(pb[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}
