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
	"maps"
	"slices"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/transport"
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
// The one that runs is the keyed hashes' (onhost.Fingerprint), which
// starts nothing: a plan compares what the manifest records with them.
type noExec struct{ transport.Host }

func (h noExec) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if onhost.IsFingerprint(cmd) {
		return h.Host.Run(ctx, cmd, stdin, stdout, stderr)
	}
	return transport.ErrNoExec
}

// Populate applies the layout to its hosts without running commands and
// returns the number of files written.
func Populate(ctx context.Context, c Config) (int, error) {
	cfg := fleet.Config{Layout: c.Layout, KnownHosts: c.KnownHosts, Identity: c.Identity, Parallelism: c.Parallelism, Getenv: c.Getenv}
	s, err := fleet.Begin(ctx, cfg, nil, true)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if len(s.Hosts.Errs) > 0 {
		for _, n := range slices.Sorted(maps.Keys(s.Hosts.Errs)) {
			return 0, fmt.Errorf("%s: %w", n, s.Hosts.Errs[n])
		}
	}
	p := s.Plan
	if len(p.Problems) > 0 {
		return 0, fmt.Errorf("the plan has problems: %v", p.Problems)
	}
	for n, h := range s.Hosts.Conns {
		s.Hosts.Conns[n] = noExec{h}
	}
	res := s.Execute(ctx, fleet.ApplyOptions{Log: c.Log})
	if err := res.Err(); err != nil {
		return 0, err
	}
	if res.Stopped != nil {
		return 0, res.Stopped
	}
	return p.Summary.Files, nil
}
