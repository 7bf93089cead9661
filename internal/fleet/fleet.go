// Package fleet is cyrplan's pipeline, in one place: load the layout,
// scope it, render it, reach the hosts, lock them, observe them, plan,
// and execute the plan. Every command that works on hosts (plan, apply,
// status, run, locate, failover, unlock) and fleetgen's populate go
// through it; the CLI only maps flags to a Config and results to output.
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cyrplan/cyrplan/internal/gitops"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
	"github.com/cyrplan/cyrplan/internal/transport/ssh"
	"github.com/cyrplan/cyrplan/internal/version"
)

// Config is everything the pipeline needs, as plain values.
type Config struct {
	Layout   string   // the layout directory
	Targets  []string // stores, slots or hosts; none means all
	Excludes []string

	// Root, when set, makes every host the directory Root/<host> (the
	// local transport); otherwise hosts are reached over SSH.
	Root           string
	KnownHosts     string // known_hosts file; "" for $CYRPLAN_KNOWN_HOSTS or ~/.ssh/known_hosts
	Identity       string // private key file; "" for $CYRPLAN_IDENTITY or the ssh-agent
	ConnectTimeout time.Duration
	RequestTimeout time.Duration // a file operation left unanswered this long drops the host
	Parallelism    int           // hosts at once; default 16

	// Getenv reads secrets (os.Getenv when nil).
	Getenv func(string) string
	// Transform, when set, changes the loaded layout before it is
	// rendered: an operation's transitional layout (a slot move keeps the
	// old replica beside the new one).
	Transform func(*layout.Layout) (*layout.Layout, error)
	// Warn receives notes along the way (a stale lock broken).
	Warn func(string)
}

func (c Config) parallelism() int {
	if c.Parallelism < 1 {
		return 16
	}
	return c.Parallelism
}

func (c Config) warn(msg string) {
	if c.Warn != nil {
		c.Warn(msg)
	}
}

// transport is how the plan records c's way of reaching hosts.
func (c Config) transport() plan.Transport {
	if c.Root != "" {
		abs, err := filepath.Abs(c.Root)
		if err != nil {
			abs = c.Root
		}
		return plan.Transport{Kind: "local", Root: abs}
	}
	return plan.Transport{Kind: "ssh"}
}

// Revision is where the layout is in git.
type Revision struct {
	Commit   string   // HEAD; "" outside git
	LayoutID string   // the layout directory's tree at HEAD
	Dirty    []string // files with uncommitted changes
}

// Loaded is a layout with everything derived from it without reaching a
// host: its revision, the scope of the targets, and the rendered tree.
type Loaded struct {
	Layout     *layout.Layout
	Scope      *plan.Scope
	Tree       *render.Tree
	Rev        Revision
	LayoutHash string
}

// Load loads, checks and renders c's layout and resolves its targets.
func Load(c Config) (*Loaded, error) {
	l, err := LoadLayout(c.Layout)
	if err != nil {
		return nil, err
	}
	if c.Transform != nil {
		if l, err = c.Transform(l); err != nil {
			return nil, err
		}
	}
	scope, err := plan.NewScope(l, c.Targets, c.Excludes)
	if err != nil {
		return nil, err
	}
	rev, err := ReadRevision(c.Layout)
	if err != nil {
		return nil, err
	}
	hash, err := layoutHash(c.Layout)
	if err != nil {
		return nil, err
	}
	return &Loaded{Layout: l, Scope: scope, Tree: render.Render(l), Rev: rev, LayoutHash: hash}, nil
}

// LoadLayout loads the layout in dir.
func LoadLayout(dir string, opts ...layout.Option) (*layout.Layout, error) {
	return layout.Load(dir, opts...)
}

// ReadRevision finds the commit the layout in dir is at and its
// uncommitted files; outside git all is empty.
func ReadRevision(dir string) (Revision, error) {
	repo, err := gitops.Open(dir)
	if errors.Is(err, gitops.ErrNotRepository) {
		return Revision{}, nil
	}
	if err != nil {
		return Revision{}, err
	}
	var r Revision
	if r.Commit, err = repo.Head(); err != nil {
		return r, err
	}
	if r.LayoutID, err = repo.LayoutID(r.Commit); err != nil {
		return r, err
	}
	r.Dirty, err = repo.Dirty()
	return r, err
}

// layoutHash is the SHA-256 of the layout's CUE files, names and bytes.
func layoutHash(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cue") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "%s %x\n", e.Name(), sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Hosts are the connected hosts of a command, and those that could not
// be reached, with why.
type Hosts struct {
	Conns map[string]transport.Host
	Errs  map[string]error
}

// Close closes every connection.
func (hs *Hosts) Close() {
	for _, h := range hs.Conns {
		h.Close()
	}
}

// fail moves host n to Errs.
func (hs *Hosts) fail(n string, err error) {
	if h := hs.Conns[n]; h != nil {
		h.Close()
		delete(hs.Conns, n)
	}
	hs.Errs[n] = err
}

// each runs f on every connected host, at most n at once; a host f
// fails on is moved to Errs (once all are done: f sees every host).
func (hs *Hosts) each(n int, f func(name string, h transport.Host) error) {
	var mu sync.Mutex
	failed := map[string]error{}
	parallel.Each(hs.Names(), n, func(name string) {
		if err := f(name, hs.Conns[name]); err != nil {
			mu.Lock()
			failed[name] = err
			mu.Unlock()
		}
	})
	for name, err := range failed {
		hs.fail(name, err)
	}
}

// Names returns the connected hosts, sorted.
func (hs *Hosts) Names() []string {
	out := make([]string, 0, len(hs.Conns))
	for n := range hs.Conns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Connect reaches the named hosts of l, at most c.Parallelism at once. A
// host that cannot be reached is in Errs; the others go on.
func (c Config) Connect(ctx context.Context, l *layout.Layout, names []string) (*Hosts, error) {
	hs := &Hosts{Conns: map[string]transport.Host{}, Errs: map[string]error{}}
	if c.Root != "" {
		for _, n := range names {
			hs.Conns[n] = local.New(c.Root, n)
		}
		return hs, nil
	}
	known := firstNonEmpty(c.KnownHosts, os.Getenv("CYRPLAN_KNOWN_HOSTS"))
	if known == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no known_hosts file: set --known-hosts or CYRPLAN_KNOWN_HOSTS")
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	identity := firstNonEmpty(c.Identity, os.Getenv("CYRPLAN_IDENTITY"))
	var mu sync.Mutex
	parallel.Each(names, c.parallelism(), func(n string) {
		h := l.Hosts[n]
		conn, err := ssh.Dial(ctx, ssh.Config{Name: n, Address: h.Address, Port: h.SSHPort, User: h.SSHUser,
			KnownHostsFile: known, IdentityFile: identity, ConnectTimeout: c.ConnectTimeout, RequestTimeout: c.RequestTimeout})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			hs.Errs[n] = err
			return
		}
		hs.Conns[n] = conn
	})
	return hs, nil
}

// Planned is a plan with everything that went into it. Close it.
type Planned struct {
	*Loaded
	Hosts    *Hosts
	Observed map[string]*state.Host
	Secrets  secret.Values // nil when the plan compared no secret
	Plan     *plan.Plan
}

// Close closes the connections.
func (p *Planned) Close() { p.Hosts.Close() }

// Secrets says whether a plan resolves and compares secrets.
type Secrets bool

// Whether a plan needs the secrets.
const (
	WithSecrets    Secrets = true  // plan, apply: a changed secret is a change
	WithoutSecrets Secrets = false // status: secrets are not compared
)

// Plan loads, renders, connects, observes and plans.
func Plan(ctx context.Context, c Config, secrets Secrets) (*Planned, error) {
	ld, err := Load(c)
	if err != nil {
		return nil, err
	}
	return ld.plan(ctx, c, secrets, "", nil)
}

// plan plans ld; lock, when set, runs on the connected hosts before
// they are observed (apply observes under its locks).
func (ld *Loaded) plan(ctx context.Context, c Config, secrets Secrets, id string, lock func(*Hosts)) (*Planned, error) {
	var values secret.Values
	if secrets {
		var err error
		// Missing secrets are an error before any host is touched.
		if values, err = secret.Resolve(ld.Layout, ld.secretNames(), c.Getenv); err != nil {
			return nil, err
		}
	}
	hs, err := c.Connect(ctx, ld.Layout, ld.hostNames())
	if err != nil {
		return nil, err
	}
	if lock != nil {
		lock(hs)
	}
	obs := ld.observe(ctx, c, hs, values)
	if id == "" {
		id = NewID(time.Now())
	}
	p := plan.Build(plan.Input{Layout: ld.Layout, Tree: ld.Tree, Observed: obs, Errors: hs.Errs, Scope: ld.Scope, Secrets: values,
		ID: id, Version: version.String(), Commit: ld.Rev.Commit, LayoutID: ld.Rev.LayoutID, Dirty: len(ld.Rev.Dirty) > 0,
		LayoutHash: ld.LayoutHash, Transport: c.transport()})
	return &Planned{Loaded: ld, Hosts: hs, Observed: obs, Secrets: values, Plan: p}, nil
}

// hostNames are the rendered hosts in scope, in layout order.
func (ld *Loaded) hostNames() []string {
	var out []string
	for _, h := range ld.Tree.HostNames() {
		if ld.Scope.Host(h) {
			out = append(out, h)
		}
	}
	return out
}

// secretNames are the secrets the files of the scope's slots hold.
func (ld *Loaded) secretNames() []string {
	seen := map[string]bool{}
	for _, hn := range ld.hostNames() {
		for _, f := range ld.Tree.Hosts[hn].Files {
			if ld.Scope.Slot(f.Slot) {
				for _, n := range f.Secrets {
					seen[n] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// observe reads every connected host in parallel; a host that fails is
// moved to Errs. With values, each fingerprints the replication
// credentials, which the plan compares with those its manifest records.
func (ld *Loaded) observe(ctx context.Context, c Config, hs *Hosts, values secret.Values) map[string]*state.Host {
	var cred *onhost.Labeled
	if r := ld.Layout.Replication; values[r.Password] != "" {
		cred = &onhost.Labeled{Label: state.CredentialsLabel(r.Authname), Value: values[r.Password]}
	}
	prefixes := ld.Layout.Prefixes()
	out := map[string]*state.Host{}
	var mu sync.Mutex
	hs.each(c.parallelism(), func(n string, h transport.Host) error {
		o, err := onhost.Observe(ctx, h, ld.Tree.Hosts[n], prefixes[n], values, cred)
		if err == nil {
			mu.Lock()
			out[n] = o
			mu.Unlock()
		}
		return err
	})
	return out
}

// NewID names an apply or a plan: sortable by time, unique by a random
// tail.
func NewID(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
