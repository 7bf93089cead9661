package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
	"github.com/cyrplan/cyrplan/internal/transport/ssh"
)

// hostFlags are how commands that talk to hosts reach them.
type hostFlags struct {
	root           string
	knownHosts     string
	identity       string
	parallelism    int
	connectTimeout time.Duration
	targets        []string
	excludes       []string
}

// add adds the flags of commands that work on many hosts: how to reach
// them, how many at once, and which.
func (f *hostFlags) add(fs *pflag.FlagSet) {
	f.addConnect(fs)
	fs.StringArrayVar(&f.targets, "target", nil, "limit to a store, slot or host (repeatable)")
	fs.StringArrayVar(&f.excludes, "exclude", nil, "leave out a store, slot or host (repeatable)")
}

// addConnect adds only how to reach hosts, for commands that name the
// hosts or stores they work on.
func (f *hostFlags) addConnect(fs *pflag.FlagSet) {
	fs.StringVar(&f.root, "root", "", "treat each host as the directory `DIR`/<host> instead of connecting over SSH (nothing is run)")
	fs.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts `file` for strict host key checking (env CYRPLAN_KNOWN_HOSTS, default ~/.ssh/known_hosts)")
	fs.StringVar(&f.identity, "identity", "", "SSH private key `file` (env CYRPLAN_IDENTITY; default: the ssh-agent)")
	fs.IntVar(&f.parallelism, "parallelism", 16, "hosts to work on at once")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "give up connecting to a host after this long")
}

// fleet is the hosts a command works on, connected.
type fleet struct {
	hosts map[string]transport.Host
	errs  map[string]error // hosts that could not be reached
}

func (f *fleet) close() {
	for _, h := range f.hosts {
		h.Close()
	}
}

// connect reaches the named hosts, at most --parallelism at once. A host
// that cannot be reached is recorded in errs; the others go on.
func (f *hostFlags) connect(ctx context.Context, l *layout.Layout, names []string) (*fleet, error) {
	fl := &fleet{hosts: map[string]transport.Host{}, errs: map[string]error{}}
	if f.root != "" {
		for _, n := range names {
			fl.hosts[n] = local.New(f.root, n)
		}
		return fl, nil
	}
	known := firstNonEmpty(f.knownHosts, os.Getenv("CYRPLAN_KNOWN_HOSTS"))
	if known == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no known_hosts file: set --known-hosts or CYRPLAN_KNOWN_HOSTS")
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	identity := firstNonEmpty(f.identity, os.Getenv("CYRPLAN_IDENTITY"))
	var mu sync.Mutex
	parallel.Each(names, f.parallelism, func(n string) {
		h := l.Hosts[n]
		c, err := ssh.Dial(ctx, ssh.Config{Name: n, Address: h.Address, Port: h.SSHPort, User: h.SSHUser,
			KnownHostsFile: known, IdentityFile: identity, ConnectTimeout: f.connectTimeout})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fl.errs[n] = err
			return
		}
		fl.hosts[n] = c
	})
	return fl, nil
}

// observe reads every host of the fleet in parallel.
func (f *hostFlags) observe(ctx context.Context, l *layout.Layout, t *render.Tree, fl *fleet) map[string]*state.Host {
	out := map[string]*state.Host{}
	var mu sync.Mutex
	names := make([]string, 0, len(fl.hosts))
	for n := range fl.hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	parallel.Each(names, f.parallelism, func(n string) {
		o, err := state.Observe(ctx, fl.hosts[n], t.Hosts[n], l.PrefixesOn(n))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fl.errs[n] = err
			return
		}
		out[n] = o
	})
	return out
}

// planned is a plan with everything that went into it.
type planned struct {
	layout   *layout.Layout
	tree     *render.Tree
	scope    *plan.Scope
	fleet    *fleet
	observed map[string]*state.Host
	plan     *plan.Plan
}

// makePlan loads, renders, connects, observes and plans. The caller
// closes p.fleet. lockFirst runs after connecting and before observing
// (apply observes under its locks).
func (g *globals) makePlan(ctx context.Context, f *hostFlags, lockFirst func(*fleet) error) (*planned, error) {
	l, err := g.load()
	if err != nil {
		return nil, err
	}
	scope, err := plan.NewScope(l, f.targets, f.excludes)
	if err != nil {
		return nil, err
	}
	t := render.Render(l)
	var names []string
	for _, h := range t.HostNames() {
		if scope.Host(h) {
			names = append(names, h)
		}
	}
	fl, err := f.connect(ctx, l, names)
	if err != nil {
		return nil, err
	}
	if lockFirst != nil {
		if err := lockFirst(fl); err != nil {
			fl.close()
			return nil, err
		}
	}
	rev, err := g.revision()
	if err != nil {
		fl.close()
		return nil, err
	}
	obs := f.observe(ctx, l, t, fl)
	p := plan.Build(plan.Input{Layout: l, Tree: t, Observed: obs, Errors: fl.errs, Scope: scope,
		Commit: rev.commit, LayoutID: rev.layoutID, Dirty: len(rev.dirty) > 0})
	return &planned{layout: l, tree: t, scope: scope, fleet: fl, observed: obs, plan: p}, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
