package fleet

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/apply"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// StaleError is a saved plan that no longer says what an apply would do.
type StaleError struct {
	Why []string
}

func (e *StaleError) Error() string {
	return "the saved plan is stale; make a new plan:\n  " + strings.Join(e.Why, "\n  ")
}

// DirtyError is a layout with uncommitted changes, which apply refuses
// unless told otherwise.
type DirtyError struct {
	Files []string
}

func (e *DirtyError) Error() string {
	return fmt.Sprintf("the layout has uncommitted changes (%s): commit them, or pass --allow-dirty", strings.Join(e.Files, ", "))
}

// Session is an apply under way: the hosts are locked, observed and
// planned. Close it to release the locks.
type Session struct {
	*Planned
	ApplyID string
	// AppliedBy is the apply that already executed the saved plan; the
	// session then has nothing to do.
	AppliedBy string

	c      Config
	info   apply.LockInfo
	locked []string
}

// Begin starts an apply: of the saved plan, or (saved nil) of a plan made
// now. It refuses a layout with uncommitted changes unless allowDirty,
// and missing secrets, before any host is touched; then it connects,
// takes every host's lock, observes the hosts and plans. A saved plan is
// bound: its scope and transport are used, and unless a plan made now is
// exactly the saved one, Begin fails with a *StaleError that names each
// difference.
func Begin(ctx context.Context, c Config, saved *plan.Plan, allowDirty bool) (*Session, error) {
	id := ""
	if saved != nil {
		c.Targets, c.Excludes, id = saved.Targets, saved.Excludes, saved.ID
		if c.Root == "" && saved.Transport.Kind == "local" {
			c.Root = saved.Transport.Root
		}
	}
	ld, err := Load(c)
	if err != nil {
		return nil, err
	}
	if len(ld.Rev.Dirty) > 0 && !allowDirty {
		return nil, &DirtyError{Files: ld.Rev.Dirty}
	}
	s := &Session{c: c, ApplyID: NewID(time.Now())}
	s.info = apply.NewLockInfo(s.ApplyID, time.Now())
	s.Planned, err = ld.plan(ctx, c, WithSecrets, id, s.lockAll)
	if err != nil {
		return nil, err
	}
	if saved == nil {
		return s, nil
	}
	if by := s.appliedBy(saved); by != "" {
		s.AppliedBy = by
		return s, nil
	}
	if why := plan.Compare(saved, s.Plan); len(why) > 0 {
		s.Close()
		return nil, &StaleError{Why: why}
	}
	return s, nil
}

// appliedBy returns the apply that executed saved on every host it
// changes, as their manifests record, or "".
func (s *Session) appliedBy(saved *plan.Plan) string {
	by := ""
	for _, h := range saved.Hosts {
		if !h.Read || !h.NeedsWork {
			continue
		}
		o := s.Observed[h.Host]
		if o == nil || o.Manifest == nil || o.Manifest.PlanID != saved.ID {
			return ""
		}
		by = o.Manifest.ApplyID
	}
	return by
}

// lockAll takes the lock of every connected host; a host whose lock is
// held goes to the errors.
func (s *Session) lockAll(hs *Hosts) {
	var mu sync.Mutex
	hs.each(s.c.parallelism(), func(n string, h transport.Host) error {
		err := apply.Lock(context.Background(), h, s.info, s.c.warn)
		if err == nil {
			mu.Lock()
			s.locked = append(s.locked, n)
			mu.Unlock()
		}
		return err
	})
}

// ApplyOptions are how the actions of an apply run.
type ApplyOptions struct {
	Log           io.Writer // progress, one line per step
	Health        func(ctx context.Context, addr, servername string) error
	HealthTimeout time.Duration
	KeepBackups   int // applies whose backups a host keeps (default 10)
}

// Execute performs the session's plan, exactly. Hosts that could not be
// reached or locked are among the failures.
func (s *Session) Execute(ctx context.Context, o ApplyOptions) *apply.Result {
	res := apply.Execute(ctx, s.Plan, s.Tree, s.Hosts.Conns, apply.Options{
		ApplyID: s.ApplyID, Secrets: s.Secrets, Log: o.Log, Parallelism: s.c.parallelism(),
		Health: o.Health, HealthTimeout: o.HealthTimeout, KeepBackups: o.KeepBackups,
	})
	for h, err := range s.Hosts.Errs {
		if res.Failed == nil {
			res.Failed = map[string]error{}
		}
		res.Failed[h] = err
	}
	return res
}

// Close releases the locks, all hosts at once, even after SIGINT, and
// closes the connections.
func (s *Session) Close() {
	var mu sync.Mutex
	parallel.Each(slices.Sorted(slices.Values(s.locked)), s.c.parallelism(), func(n string) {
		h := s.Hosts.Conns[n]
		if h == nil {
			return
		}
		if err := apply.Unlock(context.Background(), h, s.info); err != nil {
			mu.Lock()
			defer mu.Unlock()
			s.c.warn(err.Error())
		}
	})
	s.Planned.Close()
}
