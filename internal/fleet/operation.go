package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/canary"

	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/operation"
	"github.com/cyrplan/cyrplan/internal/simulate"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/version"
)

// Op is an operation to plan.
type Op struct {
	Kind  string // "failover", "drain" or "failback"
	Store string // failover: the store
	To    string // failover: the slot to promote ("" picks one)
	Force bool   // failover: go on while a slot's host is down
	Host  string // drain: the host; failback: only stores whose preferred master is there ("" all)
	From  string // move: the replica that left the layout
	Waves int    // upgrade of every store whose build changed (Store ""): stores at a time
	// NoCanary leaves out the canary gates (a fleet where no message can
	// be appended: the plan says so).
	NoCanary bool
}

// Words is the command that makes the operation.
func (o Op) Words() string {
	if o.NoCanary {
		c := o
		c.NoCanary = false
		return c.Words() + " --no-canary"
	}
	switch o.Kind {
	case "failover":
		s := "failover " + o.Store
		if o.To != "" {
			s += " --to " + o.To
		}
		if o.Force {
			s += " --force"
		}
		return s
	case "failback":
		if o.Host == "" {
			return "failback --all"
		}
	case "upgrade":
		if o.Store == "" {
			return fmt.Sprintf("upgrade --all --waves %d", max(o.Waves, 1))
		}
		return "upgrade " + o.Store
	case "move":
		return "move " + o.Store + " --from " + o.From + " --to " + o.To
	}
	return o.Kind + " " + o.Host
}

// PlanOperation reads the roles the hosts record and plans o.
func PlanOperation(ctx context.Context, c Config, o Op) (*operation.Plan, error) {
	if c.Root != "" {
		return nil, fmt.Errorf("%s needs SSH hosts; --root runs no commands", o.Kind)
	}
	ld, err := Load(Config{Layout: c.Layout})
	if err != nil {
		return nil, err
	}
	l := ld.Layout
	stores := l.StoreNames()
	switch o.Kind {
	case "upgrade":
		if o.Store != "" {
			if l.Stores[o.Store] == nil {
				return nil, fmt.Errorf("no store %q in the layout", o.Store)
			}
			stores = []string{o.Store}
		}
	case "failover", "move":
		if l.Stores[o.Store] == nil {
			return nil, fmt.Errorf("no store %q in the layout", o.Store)
		}
		stores = []string{o.Store}
	case "drain", "failback":
		if o.Host != "" && l.Hosts[o.Host] == nil {
			return nil, fmt.Errorf("no host %q in the layout (%s)", o.Host, strings.Join(l.HostNames(), ", "))
		}
	}
	names := hostsOf(l, stores)
	var moving *layout.Layout // a move: the layout with the old replica still in the store
	if o.Kind == "move" {
		if moving, err = l.WithReplica(o.Store, o.From); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Words(), err)
		}
		if h := moving.Slots[o.From].Host; !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	hs, err := c.Connect(ctx, l, names)
	if err != nil {
		return nil, err
	}
	defer hs.Close()
	lv, down := liveOf(ctx, l, stores, hs)
	if moving != nil {
		old := moving.Slots[o.From]
		if h := hs.Conns[old.Host]; h == nil {
			lv.Down[o.From] = true
		} else if r, ok, err := onhost.ReadRole(ctx, h, o.From); err != nil {
			return nil, err
		} else if ok {
			lv.Roles[o.From] = r
		} else {
			lv.Roles[o.From] = layout.Replica
		}
	}
	p := &operation.Plan{Format: operation.Format, Kind: operation.Kind, ID: NewID(time.Now()), Operation: o.Words(),
		Version: version.String(), Commit: ld.Rev.Commit, Layout: ld.LayoutHash, Transport: c.transport(),
		Roles: map[string]layout.Role{}, Down: down, Steps: []*operation.Step{}, Warnings: []string{}}
	for _, name := range stores {
		for _, sn := range l.Stores[name].Slots() {
			if r, ok := lv.Roles[sn]; ok {
				p.Roles[sn] = r
			}
		}
	}
	var steps []*operation.Step
	switch o.Kind {
	case "failover":
		var warnings []string
		steps, warnings, err = operation.Failover(l, l.Stores[o.Store], lv, o.To, o.Force)
		p.Warnings = append(p.Warnings, warnings...)
		steps = operation.Number(steps)
	case "drain":
		if hs.Errs[o.Host] != nil {
			return nil, fmt.Errorf("drain %s: the host does not answer (%v); a host that is down is failed over with cyrplan failover STORE --force", o.Host, hs.Errs[o.Host])
		}
		steps, err = operation.Drain(l, lv, o.Host)
		p.Simulation = simulate.Down(l, lv.Current(l), []string{o.Host})
	case "failback":
		steps, err = operation.Failback(l, lv, o.Host)
	case "move":
		var notes []string
		steps, notes, err = operation.Move(l, l.Stores[o.Store], lv, o.From, o.To)
		p.Warnings = append(p.Warnings, notes...)
		steps = operation.Number(steps)
	case "upgrade":
		upgrading := 0
		for _, name := range stores {
			st := l.Stores[name]
			from, rerr := runningBuild(ctx, l, st, hs)
			if rerr != nil {
				err = rerr
				break
			}
			if to := l.BuildOf(st.Master); from != nil && from.Prefix == to.Prefix {
				continue // every slot runs the build already
			}
			s, notes, uerr := operation.Upgrade(l, st, lv, from, l.BuildOf(st.Master))
			if uerr != nil {
				err = uerr
				break
			}
			if o.Store == "" {
				for _, x := range s {
					x.Wave = upgrading/max(o.Waves, 1) + 1
				}
			}
			upgrading++
			steps = append(steps, s...)
			p.Warnings = append(p.Warnings, notes...)
		}
		steps = operation.Number(steps)
	default:
		err = fmt.Errorf("no operation %q", o.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Words(), err)
	}
	if o.NoCanary {
		operation.WithoutCanary(steps)
	}
	if steps != nil {
		p.Steps = steps
	}
	return p, nil
}

var prefixRE = regexp.MustCompile(`(?m)^PREFIX='([^'\n]*)'$`)

// runningBuild is the build the slots of st run now, by the PREFIX of
// their init scripts on the hosts: nil when they differ or none is one of
// the layout's builds.
func runningBuild(ctx context.Context, l *layout.Layout, st *layout.Store, hs *Hosts) (*layout.Build, error) {
	prefix := ""
	for _, sn := range st.Slots() {
		h := hs.Conns[l.Slots[sn].Host]
		if h == nil {
			return nil, fmt.Errorf("%s does not answer: %v", l.Slots[sn].Host, hs.Errs[l.Slots[sn].Host])
		}
		data, err := h.ReadFile(ctx, hostpath.Named(sn).InitScript)
		if err != nil {
			return nil, err
		}
		m := prefixRE.FindSubmatch(data)
		if m == nil || (prefix != "" && prefix != string(m[1])) {
			return nil, nil
		}
		prefix = string(m[1])
	}
	for _, b := range l.Builds {
		if b.Prefix == prefix {
			return b, nil
		}
	}
	return nil, nil
}

// hostsOf are the hosts of the stores' slots, in layout order.
func hostsOf(l *layout.Layout, stores []string) []string {
	seen := map[string]bool{}
	for _, name := range stores {
		for _, sn := range l.Stores[name].Slots() {
			seen[l.Slots[sn].Host] = true
		}
	}
	var out []string
	for _, h := range l.HostNames() {
		if seen[h] {
			out = append(out, h)
		}
	}
	return out
}

// liveOf reads the roles the stores' hosts record.
func liveOf(ctx context.Context, l *layout.Layout, stores []string, hs *Hosts) (operation.Live, []string) {
	lv := operation.Live{Roles: map[string]layout.Role{}, Down: map[string]bool{}}
	downHosts := map[string]bool{}
	for _, name := range stores {
		r := store.Read(ctx, l, l.Stores[name], hs.Conns, hs.Errs)
		maps.Copy(lv.Roles, r.Roles)
		for sn := range r.Down {
			lv.Down[sn] = true
			downHosts[l.Slots[sn].Host] = true
		}
	}
	return lv, slices.Sorted(maps.Keys(downHosts))
}

// RunOperation performs the steps of p not yet done, in order, each
// followed by its gate, with progress on log. Each step done is recorded
// in the journal of its host, so that running p again resumes where it
// stopped; a plan not yet begun is refused when the roles it was made
// from changed since. resume is the command that resumes it, for the
// message of a failed step.
func RunOperation(ctx context.Context, c Config, p *operation.Plan, log io.Writer, resume string) error {
	if c.Root == "" && p.Transport.Kind == "local" {
		c.Root = p.Transport.Root
	}
	if c.Root != "" {
		return errors.New("operations need SSH hosts; --root runs no commands")
	}
	l, err := LoadLayout(c.Layout)
	if err != nil {
		return err
	}
	if h, err := layoutHash(c.Layout); err != nil {
		return err
	} else if h != p.Layout {
		return &StaleError{Why: []string{"the layout's files changed since the operation was planned"}}
	}
	names := map[string]bool{}
	for _, s := range p.Steps {
		names[s.Host] = true
	}
	for sn := range p.Roles {
		if s := l.Slots[sn]; s != nil {
			names[s.Host] = true
		}
	}
	hs, err := c.Connect(ctx, l, slices.Sorted(maps.Keys(names)))
	if err != nil {
		return err
	}
	defer hs.Close()
	done := map[int]bool{}
	for _, n := range hs.Names() {
		if j, err := onhost.ReadJournal(ctx, hs.Conns[n]); err != nil {
			return err
		} else if j != nil && j.PlanID == p.ID {
			for _, d := range j.Done {
				done[d] = true
			}
		}
	}
	if len(done) == len(p.Steps) && len(p.Steps) > 0 {
		fmt.Fprintf(log, "The operation %s (%s) was applied already: nothing to do.\n", p.ID, p.Operation)
		return nil
	}
	if len(done) == 0 {
		if why := staleRoles(ctx, l, p, hs); len(why) > 0 {
			return &StaleError{Why: why}
		}
	} else {
		fmt.Fprintf(log, "Resuming %s: %d of %d steps are done.\n", p.Operation, len(done), len(p.Steps))
	}
	r := &opRun{c: c, l: l, hs: hs, p: p, done: done, log: log, resume: resume, start: time.Now()}
	if slices.ContainsFunc(p.Steps, func(st *operation.Step) bool { return st.Gate == operation.Canary }) {
		if r.canary, err = canaryLogin(l, c); err != nil {
			return err
		}
	}
	for _, wave := range waves(p.Steps) {
		if err := r.wave(ctx, wave); err != nil {
			return err
		}
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(log, "\nWarning: %s\n", w)
	}
	fmt.Fprintf(log, "\nOperation complete: %s, %d %s.\n", p.Operation, len(p.Steps), plural(len(p.Steps), "step", "steps"))
	return nil
}

// waves groups steps: each wave is the steps of its stores, store by
// store in order; steps of wave 0 form one group, run in order.
func waves(steps []*operation.Step) [][][]*operation.Step {
	var out [][][]*operation.Step
	for i := 0; i < len(steps); {
		w := steps[i].Wave
		j := i
		for j < len(steps) && steps[j].Wave == w {
			j++
		}
		groups := [][]*operation.Step{steps[i:j]}
		if w > 0 {
			groups = nil
			index := map[string]int{}
			for _, s := range steps[i:j] {
				k, ok := index[s.Store]
				if !ok {
					k = len(groups)
					index[s.Store] = k
					groups = append(groups, nil)
				}
				groups[k] = append(groups[k], s)
			}
		}
		out = append(out, groups)
		i = j
	}
	return out
}

// opRun is an operation being run.
type opRun struct {
	c      Config
	l      *layout.Layout
	hs     *Hosts
	p      *operation.Plan
	done   map[int]bool
	log    io.Writer
	resume string
	start  time.Time
	mu     sync.Mutex // the log and the journals

	applyMu sync.Mutex
	applies map[string]*sync.Mutex // by host: one apply at a time takes a host's lock

	canary canary.Config // how the canary gates log in
}

// applying serialises the apply steps of one host (each takes the host's
// apply lock) when the stores of a wave run side by side.
func (r *opRun) applying(host string) func() {
	r.applyMu.Lock()
	if r.applies == nil {
		r.applies = map[string]*sync.Mutex{}
	}
	m := r.applies[host]
	if m == nil {
		m = &sync.Mutex{}
		r.applies[host] = m
	}
	r.applyMu.Unlock()
	m.Lock()
	return m.Unlock
}

// wave runs the groups of a wave side by side, each in order; the first
// failure stops every group before its next step.
func (r *opRun) wave(ctx context.Context, groups [][]*operation.Step) error {
	var (
		wg     sync.WaitGroup
		failed error
		mu     sync.Mutex
	)
	stopped := func() bool { mu.Lock(); defer mu.Unlock(); return failed != nil }
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range g {
				if r.done[s.N] || stopped() {
					continue
				}
				if err := r.step(ctx, s); err != nil {
					mu.Lock()
					if failed == nil {
						failed = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return failed
}

// step runs one step and journals it.
func (r *opRun) step(ctx context.Context, s *operation.Step) error {
	n := len(r.p.Steps)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted before step %d of %d (%s): %w; resume with: %s", s.N, n, s.Says, context.Cause(ctx), r.resume)
	}
	t := time.Now()
	if s.Do == operation.Apply {
		defer r.applying(s.Host)()
	}
	err := runStep(ctx, r.c, r.l, r.hs, s)
	if err == nil && s.Gate == operation.Canary {
		err = r.canaryGate(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("step %d of %d failed (%s): %w\n%s: steps before %d are done, this one and those after are not; once the cause is fixed, resume with: %s",
			s.N, n, s.Says, err, s.Store, s.N, r.resume)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := onhost.RecordStep(context.WithoutCancel(ctx), r.hs.Conns[s.Host], r.p.ID, s.N); err != nil {
		return fmt.Errorf("step %d of %d ran, but recording it failed: %w", s.N, n, err)
	}
	fmt.Fprintf(r.log, "[%d/%d] %s %s on %s: %s: ok (%s, %s in all)\n", s.N, n, s.Store, s.Slot, s.Host, s.Says,
		time.Since(t).Round(time.Millisecond), time.Since(r.start).Round(time.Millisecond))
	return nil
}

// canaryGate appends a message through the store's floating master
// address and waits for it on every other slot of the store, which are
// its replicas once the step is done.
func (r *opRun) canaryGate(ctx context.Context, s *operation.Step) error {
	st := r.l.Stores[s.Store]
	master := floatIMAP(st)
	var replicas []string
	for _, sn := range st.Slots() {
		if sn != s.Slot {
			replicas = append(replicas, slotIMAP(r.l, sn))
		}
	}
	took, err := canary.Check(ctx, master, replicas, r.canary)
	if err != nil && !errors.Is(err, canary.ErrPrune) {
		return fmt.Errorf("gate: %w", err)
	}
	var times []string
	for _, rep := range replicas {
		times = append(times, fmt.Sprintf("%s in %s", rep, took[rep].Round(time.Millisecond)))
	}
	r.mu.Lock()
	fmt.Fprintf(r.log, "      canary through %s reached %s\n", master, strings.Join(times, ", "))
	r.mu.Unlock()
	return nil
}

// staleRoles says how the roles the hosts record differ from those the
// plan was made from.
func staleRoles(ctx context.Context, l *layout.Layout, p *operation.Plan, hs *Hosts) []string {
	var why []string
	for _, sn := range slices.Sorted(maps.Keys(p.Roles)) {
		s := l.Slots[sn]
		h := hs.Conns[s.Host]
		if h == nil {
			continue // a host down now fails its steps
		}
		r, recorded, err := onhost.ReadRole(ctx, h, sn)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if !recorded {
			r = s.Role
		}
		if r != p.Roles[sn] {
			why = append(why, fmt.Sprintf("%s: %s now records %s, %s when the operation was planned", s.Host, sn, r, p.Roles[sn]))
		}
	}
	return why
}

// runStep performs one step and checks its gate.
func runStep(ctx context.Context, c Config, l *layout.Layout, hs *Hosts, s *operation.Step) error {
	h := hs.Conns[s.Host]
	if h == nil {
		return fmt.Errorf("%s does not answer: %v", s.Host, hs.Errs[s.Host])
	}
	if s.Do == operation.Apply {
		return applySlot(ctx, c, l, s)
	}
	slot := l.Slots[s.Slot]
	paths := hostpath.Of(slot.Name, slot.Meta)
	var err error
	switch s.Do {
	case operation.Stop:
		_, err = onhost.Service(ctx, h, s.Slot, "stop")
	case operation.SendLog:
		err = onhost.SendLog(ctx, h, paths, l.BuildOf(s.Slot).Prefix, s.Peer)
	case operation.Record:
		err = onhost.WriteRoles(ctx, h, map[string]layout.Role{s.Slot: s.Role})
	case operation.Restart, operation.Start:
		_, err = onhost.Service(ctx, h, s.Slot, string(s.Do))
	case operation.Resume:
		err = onhost.ResumeSync(ctx, h, s.Slot)
	case operation.FullSync:
		err = onhost.FullSync(ctx, h, paths, l.BuildOf(s.Slot).Prefix, s.Peer)
	default:
		err = fmt.Errorf("unknown step %q", s.Do)
	}
	if errors.Is(err, transport.ErrNoExec) {
		return fmt.Errorf("%s: this transport runs no commands", s.Host)
	}
	if err != nil {
		return err
	}
	switch s.Gate {
	case operation.Banner:
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := health.Banner(hctx, slotIMAP(l, s.Slot), s.Slot); err != nil {
			return fmt.Errorf("gate: %s's banner does not answer: %w", s.Slot, err)
		}
	case operation.Drained:
		// The rolling sync_client empties the log; give it a moment.
		for wait := time.Now().Add(time.Minute); ; {
			empty, err := onhost.LogEmpty(ctx, h, paths, s.Peer)
			if err != nil {
				return err
			}
			if empty {
				break
			}
			if time.Now().After(wait) {
				return fmt.Errorf("gate: %s's replication log for %s is not empty after a minute", s.Slot, s.Peer)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// applySlot applies the layout to step s's slot, as apply --auto-approve
// --target SLOT does, under the host's lock, exactly its plan: with
// s.Peer, the transitional layout where Peer still replicates; a slot
// that left the layout is retired by applying its host.
func applySlot(ctx context.Context, c Config, l *layout.Layout, s *operation.Step) error {
	c.Targets, c.Excludes = []string{s.Slot}, nil
	if l.Slots[s.Slot] == nil {
		c.Targets = []string{s.Host}
	}
	if s.Peer != "" {
		c.Transform = func(l *layout.Layout) (*layout.Layout, error) { return l.WithReplica(s.Store, s.Peer) }
	}
	sess, err := Begin(ctx, c, nil, true)
	if err != nil {
		return err
	}
	defer sess.Close()
	if len(sess.Plan.Problems) > 0 {
		return fmt.Errorf("the plan of %s has problems: %s", s.Slot, strings.Join(sess.Plan.Problems, "; "))
	}
	if !sess.Plan.HasChanges() && len(sess.Hosts.Errs) == 0 {
		return nil
	}
	res := sess.Execute(ctx, ApplyOptions{Health: health.Banner})
	return errors.Join(res.Err(), res.Stopped)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
