package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/apply"
	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/transport"
)

func newApplyCommand(g *globals) *cobra.Command {
	var (
		f           hostFlags
		autoApprove bool
		allowDirty  bool
		health      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply [FILE | --auto-approve]",
		Short: "Change the hosts to match the layout: a saved plan, or plan and apply at once",
		Long: `apply takes each host's lock, checks that nothing changed since the plan
(a saved plan from another layout commit, or of a file that changed on a
host since, is refused), writes every file atomically keeping the
previous version under /var/lib/cyrplan/backup, records a manifest, and
then starts, reloads, restarts or stops slots store by store, replicas
before masters, checking each slot's IMAP banner. A slot whose check
fails gets its previous files back and is restarted, and the apply stops.

Secrets are read from the environment (see secrets in the layout) and
never written to plans or logs.

Exit status: 0 done, 1 failed before changing anything, 3 partial (some
hosts changed, something failed: run apply again once it is fixed).`,
		Example: `  cyrplan plan --out fleet.plan && cyrplan apply fleet.plan
  CYRPLAN_SECRET_REPLICATION=... cyrplan apply --auto-approve --target store23
  cyrplan apply --auto-approve --root /tmp/fleet`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == autoApprove {
				return errors.New("apply needs a saved plan FILE or --auto-approve (to plan and apply at once)")
			}
			var saved *plan.Plan
			if len(args) == 1 {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				saved, err = plan.Read(file)
				file.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				f.targets, f.excludes = saved.Targets, saved.Excludes
			}
			return g.apply(cmd.Context(), &f, saved, allowDirty, health)
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "plan and apply without a saved plan")
	cmd.Flags().BoolVar(&allowDirty, "allow-dirty", false, "apply although the layout has uncommitted changes")
	cmd.Flags().DurationVar(&health, "health-timeout", 30*time.Second, "how long a slot may take to greet with its banner after a start, reload or restart")
	return cmd
}

func (g *globals) apply(ctx context.Context, f *hostFlags, saved *plan.Plan, allowDirty bool, healthTimeout time.Duration) error {
	id := newApplyID(time.Now())
	info := apply.NewLockInfo(id, time.Now())
	var locked []transport.Host
	var lockMu sync.Mutex
	lockAll := func(fl *fleet) error {
		names := make([]string, 0, len(fl.hosts))
		for n := range fl.hosts {
			names = append(names, n)
		}
		var failed []string
		parallel.Each(names, f.parallelism, func(n string) {
			err := apply.Lock(ctx, fl.hosts[n], info, func(msg string) { fmt.Fprintln(g.stderr, "cyrplan: "+msg) })
			lockMu.Lock()
			defer lockMu.Unlock()
			if err != nil {
				fl.errs[n] = err
				failed = append(failed, n)
				return
			}
			locked = append(locked, fl.hosts[n])
		})
		for _, n := range failed {
			fl.hosts[n].Close()
			delete(fl.hosts, n)
		}
		return nil
	}
	// A dirty layout is refused before any host is touched.
	if rev, err := g.revision(); err != nil {
		return err
	} else if len(rev.dirty) > 0 && !allowDirty {
		return fmt.Errorf("the layout has uncommitted changes (%s): commit them, or pass --allow-dirty", strings.Join(rev.dirty, ", "))
	}
	pl, err := g.makePlan(ctx, f, lockAll)
	if err != nil {
		return err
	}
	defer pl.fleet.close()
	defer func() {
		// Locks are released even after SIGINT, all hosts at once.
		byName := map[string]transport.Host{}
		for _, h := range locked {
			byName[h.Name()] = h
		}
		parallel.Each(slices.Sorted(maps.Keys(byName)), f.parallelism, func(n string) {
			if err := apply.Unlock(context.WithoutCancel(ctx), byName[n], info); err != nil {
				lockMu.Lock()
				defer lockMu.Unlock()
				fmt.Fprintf(g.stderr, "cyrplan: %v\n", err)
			}
		})
	}()
	p := pl.plan
	if saved != nil {
		if why := plan.Stale(saved, p); len(why) > 0 {
			return fmt.Errorf("the saved plan is stale; make a new plan:\n  %s", strings.Join(why, "\n  "))
		}
	} else {
		p.WriteText(g.stdout)
	}
	if len(p.Problems) > 0 {
		return fmt.Errorf("refusing to apply a plan with problems:\n  %s", strings.Join(p.Problems, "\n  "))
	}
	if !p.HasChanges() && len(p.Unreachable()) == 0 {
		fmt.Fprintln(g.stdout, "Nothing to apply.")
		return nil
	}
	values, err := secret.Resolve(pl.layout, secretsToWrite(p, pl), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "\nApplying (apply %s):\n", id)
	var healthCheck func(context.Context, string, string) error
	if f.root == "" {
		healthCheck = health.Banner
	}
	commit, dirty := p.Commit, p.Dirty
	res := apply.Execute(ctx, p, pl.tree, pl.fleet.hosts, apply.Options{
		ApplyID: id, Commit: commit, Dirty: dirty, Secrets: values, Log: g.stdout,
		Parallelism: f.parallelism, Health: healthCheck, HealthTimeout: healthTimeout,
	})
	for h, err := range pl.fleet.errs {
		if res.Failed == nil {
			res.Failed = map[string]error{}
		}
		res.Failed[h] = err
	}
	return applyResult(g, res)
}

func applyResult(g *globals, res *apply.Result) error {
	if res.Err() == nil && res.Stopped == nil {
		fmt.Fprintf(g.stdout, "\nApply complete: %d %s changed.\n", len(res.Changed), plural(len(res.Changed), "host", "hosts"))
		return nil
	}
	why := errors.Join(res.Err(), res.Stopped)
	if len(res.Changed) == 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("apply failed before changing anything:\n%v", indent(why))}
	}
	return &exitError{code: exitPartial, err: fmt.Errorf("apply partly done: %d %s changed (%s), and:\n%v\nFix the cause and run apply again: it converges.",
		len(res.Changed), plural(len(res.Changed), "host", "hosts"), strings.Join(res.Changed, ", "), indent(why))}
}

func indent(err error) string {
	if err == nil {
		return ""
	}
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

// secretsToWrite names the secrets in the files the plan writes.
func secretsToWrite(p *plan.Plan, pl *planned) []string {
	seen := map[string]bool{}
	for _, h := range p.Hosts {
		files := map[string][]byte{}
		for _, f := range pl.tree.Hosts[h.Host].Files {
			files[f.Path] = f.Content
		}
		for _, fc := range h.Files {
			if fc.Action != plan.Delete {
				for _, n := range secret.Names(files[fc.Path]) {
					seen[n] = true
				}
			}
		}
	}
	return keys(seen)
}

// newApplyID names an apply: sortable by time, unique by a random tail.
func newApplyID(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}
