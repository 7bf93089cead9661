// Package failover moves a store's current master from one of its slots
// to another, in the seed's model: stop the old master (no more writes),
// drain its replication log to the new master, record the new roles on
// both hosts, start the new master (which takes the store's floating
// master address and announces it) and start the old one as replica.
package failover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Request is one failover.
type Request struct {
	Layout *layout.Layout
	Store  *layout.Store
	Hosts  map[string]transport.Host // connected hosts of the store's slots
	Errs   map[string]error          // hosts that could not be reached
	To     string                    // the slot to promote; "" picks one
	Force  bool                      // the current master's host is down: no drain
	Log    io.Writer
	// Health checks a slot's banner; nil skips the check.
	Health func(ctx context.Context, addr, servername string) error
}

// Run performs the failover, printing each step as it goes. On error the
// message says which step failed and what state the store is left in.
func Run(ctx context.Context, r Request) error {
	l, st := r.Layout, r.Store
	lv := store.Read(ctx, l, st, r.Hosts, r.Errs)
	masters := lv.Masters()
	to := r.To
	if to == "" {
		to = pick(lv)
	}
	if to == "" {
		return fmt.Errorf("store %s: no slot to promote (no replica answers)", st.Name)
	}
	if !slices.Contains(st.Slots(), to) {
		return fmt.Errorf("slot %s is not in store %s (%s)", to, st.Name, strings.Join(st.Slots(), ", "))
	}
	if err := lv.Down[to]; err != nil {
		return fmt.Errorf("cannot promote %s: its host does not answer: %v", to, err)
	}
	var old []string // masters to demote
	for _, m := range masters {
		if m != to {
			old = append(old, m)
		}
	}
	var down []string // slots whose host is down and that may still think they are master
	for sn := range lv.Down {
		if sn != to {
			down = append(down, sn)
		}
	}
	if len(masters) == 1 && masters[0] == to && len(down) == 0 {
		fmt.Fprintf(r.Log, "%s: %s is already the master.\n", st.Name, to)
		return nil
	}
	if len(down) > 0 && !r.Force {
		return fmt.Errorf("store %s: the host of %s does not answer (%v); if it is down for good, run again with --force (what it has not replicated yet may be lost)",
			st.Name, strings.Join(down, ", "), lv.Down[down[0]])
	}
	step := 0
	say := func(format string, args ...any) {
		step++
		fmt.Fprintf(r.Log, "%d. %s\n", step, fmt.Sprintf(format, args...))
	}
	slotHost := func(sn string) transport.Host { return r.Hosts[l.Slots[sn].Host] }

	// 1. Stop the old masters: no more writes, and their floating
	// master address is released.
	for _, m := range old {
		say("stop %s on %s (the old master: no more writes; releases %s)", m, l.Slots[m].Host, st.IP.Master)
		if err := initScript(ctx, slotHost(m), m, "stop"); err != nil {
			return fmt.Errorf("step %d: %w; nothing has changed yet", step, err)
		}
	}
	// A slot already master that others still claim to be (a host back
	// after a forced failover): they only come back as its replicas. What
	// they took in before was declared lost by the forced failover.
	rejoin := lv.Recorded[to] && lv.Roles[to] == layout.Master
	// 2. Drain what the old masters logged and have not sent yet.
	if !r.Force && !rejoin {
		for _, m := range old {
			say("drain %s's replication log to %s", m, to)
			if err := drain(ctx, l, slotHost(m), m, to); err != nil {
				return fmt.Errorf("step %d: %w; %s is stopped, roles are unchanged: fix it and run failover again, or start %s again with its init script",
					step, err, m, m)
			}
		}
	}
	// 3. Record the new roles.
	say("record the roles: %s master%s", to, replicaList(old))
	if err := onhost.WriteRole(ctx, slotHost(to), to, layout.Master); err != nil {
		return fmt.Errorf("step %d: %w", step, err)
	}
	for _, m := range old {
		if err := onhost.WriteRole(ctx, slotHost(m), m, layout.Replica); err != nil {
			return fmt.Errorf("step %d: %w; %s already records master", step, err, to)
		}
	}
	// 4. The new master: restart in its new role, taking the floating
	// master address and announcing it (a slot that was master already
	// keeps running).
	if !rejoin {
		say("restart %s on %s as master (takes %s, announces it)", to, l.Slots[to].Host, st.IP.Master)
		if err := initScript(ctx, slotHost(to), to, "restart"); err != nil {
			return fmt.Errorf("step %d: %w; the roles are recorded: once fixed, run %s restart on %s", step, err, initPath(to), l.Slots[to].Host)
		}
		if err := r.check(ctx, l, to); err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
	}
	// 5. The old masters come back as replicas of the new one.
	for _, m := range old {
		say("start %s on %s as replica", m, l.Slots[m].Host)
		if err := initScript(ctx, slotHost(m), m, "start"); err != nil {
			return fmt.Errorf("step %d: %w; %s is master; start %s by hand once fixed", step, err, to, m)
		}
		if err := r.check(ctx, l, m); err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
	}
	if r.Force && len(down) > 0 {
		fmt.Fprintf(r.Log, "\nForced: the host of %s did not answer. What it took in and had not replicated to %s is not on %s and may be lost.\n"+
			"When it is back it still records itself as master, but it does not start as master while %s answers from %s (fencing).\n"+
			"Bring it back as replica with\n  cyrplan failover %s --to %s\n",
			strings.Join(down, ", "), to, to, st.IP.Master, l.Slots[to].Host, st.Name, to)
	}
	fmt.Fprintf(r.Log, "%s: %s is the master now.\n", st.Name, to)
	return nil
}

// pick chooses the slot to promote: the preferred master if the store
// runs backwards, else its first replica that answers.
func pick(lv *store.Live) string {
	st := lv.Store
	if m := lv.Masters(); len(m) == 1 && m[0] != st.Master && lv.Down[st.Master] == nil {
		return st.Master
	}
	for _, sn := range st.Slots() {
		if lv.Roles[sn] == layout.Replica && lv.Down[sn] == nil {
			return sn
		}
	}
	return ""
}

func (r *Request) check(ctx context.Context, l *layout.Layout, sn string) error {
	if r.Health == nil {
		return nil
	}
	s := l.Slots[sn]
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.Health(hctx, fmt.Sprintf("%s:%d", l.Hosts[s.Host].Address, s.IMAPPort), sn); err != nil {
		return fmt.Errorf("%s started but its banner does not answer: %w", sn, err)
	}
	return nil
}

// drain sends what the stopped master m logged for channel to, with
// one-shot runs of sync_client over its rolling log files.
func drain(ctx context.Context, l *layout.Layout, h transport.Host, m, to string) error {
	s := l.Slots[m]
	dir := hostpath.Of(s.Name, s.Meta).SyncLogDir(to)
	bin := l.BuildOf(m).Prefix + "/bin/sync_client"
	conf := hostpath.Of(s.Name, s.Meta).IMAPDConf
	for _, log := range []string{"log-run", "log"} {
		path := dir + "/" + log
		if _, err := h.Stat(ctx, path); err != nil {
			continue
		}
		var out strings.Builder
		cmd := fmt.Sprintf("timeout 300 %s -C %s -n %s -o -r -f %s", shell.Quote(bin), shell.Quote(conf), shell.Quote(to), shell.Quote(path))
		if err := h.Run(ctx, cmd, nil, &out, &out); err != nil {
			return fmt.Errorf("sync_client over %s: %v: %s", path, err, strings.TrimSpace(out.String()))
		}
		if err := h.Remove(ctx, path); err != nil {
			return err
		}
	}
	return nil
}

func initPath(slot string) string { return hostpath.Named(slot).InitScript }

func initScript(ctx context.Context, h transport.Host, slot, verb string) error {
	_, err := onhost.Service(ctx, h, slot, verb)
	if errors.Is(err, transport.ErrNoExec) {
		return fmt.Errorf("%s: this transport runs no commands", h.Name())
	}
	return err
}

func replicaList(old []string) string {
	if len(old) == 0 {
		return ""
	}
	return ", " + strings.Join(old, ", ") + " replica"
}
