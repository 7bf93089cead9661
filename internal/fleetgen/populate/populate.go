// Package populate puts a layout's files on real hosts over SSH the way
// cyrplan apply does, with the same plan and the same apply code, but
// runs no service command: no slot is started. It exists so that
// benchmarks and comparisons can plan a fleet of hundreds of slots over
// real sshd without starting hundreds of Cyrus masters on one machine.
//
// A plan reads files, directories, roles, the manifest and whether each
// build is installed; it never asks whether a slot runs. So after
// Populate a host holds exactly what a plan looks at after a real apply,
// and a plan of the same layout finds no change.
package populate

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cyrplan/cyrplan/internal/apply"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/ssh"
)

// Config says where the hosts are and how to reach them.
type Config struct {
	Layout      string // layout directory
	KnownHosts  string
	Identity    string
	Parallelism int                 // hosts at once; default 16
	Getenv      func(string) string // for secrets; default os.Getenv
	Log         io.Writer           // apply's progress; nil for none
}

// noExec is a host on which commands do not run, like the local
// transport: apply reports each service action instead of running it.
type noExec struct{ transport.Host }

func (noExec) Run(context.Context, string, io.Reader, io.Writer, io.Writer) error {
	return transport.ErrNoExec
}

// Populate applies the layout to its hosts without running commands and
// returns the number of files written.
func Populate(ctx context.Context, c Config) (int, error) {
	if c.Parallelism < 1 {
		c.Parallelism = 16
	}
	l, err := layout.Load(c.Layout)
	if err != nil {
		return 0, err
	}
	t := render.Render(l)
	scope, err := plan.NewScope(l, nil, nil)
	if err != nil {
		return 0, err
	}
	names := t.HostNames()
	hosts := map[string]transport.Host{}
	observed := map[string]*state.Host{}
	var (
		mu   sync.Mutex
		errs []error
	)
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	parallel.Each(names, c.Parallelism, func(n string) {
		lh := l.Hosts[n]
		h, err := ssh.Dial(ctx, ssh.Config{Name: n, Address: lh.Address, Port: lh.SSHPort, User: lh.SSHUser,
			KnownHostsFile: c.KnownHosts, IdentityFile: c.Identity})
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		o, err := state.Observe(ctx, h, t.Hosts[n], l.PrefixesOn(n))
		mu.Lock()
		defer mu.Unlock()
		hosts[n] = noExec{h}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			return
		}
		observed[n] = o
	})
	if len(errs) > 0 {
		return 0, errs[0]
	}
	p := plan.Build(plan.Input{Layout: l, Tree: t, Observed: observed, Scope: scope})
	if len(p.Problems) > 0 {
		return 0, fmt.Errorf("the plan has problems: %v", p.Problems)
	}
	files := 0
	var toWrite []string
	for _, hp := range p.Hosts {
		files += len(hp.Files)
		content := map[string][]byte{}
		for _, f := range t.Hosts[hp.Host].Files {
			content[f.Path] = f.Content
		}
		for _, fc := range hp.Files {
			toWrite = append(toWrite, secret.Names(content[fc.Path])...)
		}
	}
	slices.Sort(toWrite)
	values, err := secret.Resolve(l, slices.Compact(toWrite), c.Getenv)
	if err != nil {
		return 0, err
	}
	res := apply.Execute(ctx, p, t, hosts, apply.Options{ApplyID: "fleetgen-populate", Secrets: values,
		Log: c.Log, Parallelism: c.Parallelism})
	if err := res.Err(); err != nil {
		return 0, err
	}
	if res.Stopped != nil {
		return 0, res.Stopped
	}
	return files, nil
}
