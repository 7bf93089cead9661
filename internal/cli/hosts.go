package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cyrplan/cyrplan/internal/fleet"
)

// hostFlags are how commands that talk to hosts reach them.
type hostFlags struct {
	root           string
	knownHosts     string
	identity       string
	parallelism    int
	connectTimeout time.Duration
	requestTimeout time.Duration
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
	fs.DurationVar(&f.requestTimeout, "request-timeout", 60*time.Second, "drop a host that leaves a file operation unanswered this long")
}

// config is the pipeline's configuration for these flags.
func (f *hostFlags) config(g *globals) fleet.Config {
	return fleet.Config{
		Layout: g.layoutDir, Targets: f.targets, Excludes: f.excludes,
		Root: f.root, KnownHosts: f.knownHosts, Identity: f.identity,
		ConnectTimeout: f.connectTimeout, RequestTimeout: f.requestTimeout, Parallelism: f.parallelism,
		Warn: func(msg string) { fmt.Fprintln(g.stderr, "cyrplan: "+msg) },
	}
}
