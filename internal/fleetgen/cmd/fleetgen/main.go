// Command fleetgen makes fleets for benchmarks and comparisons, and
// measures commands run on them.
//
//	fleetgen layout -hosts N -slots M -out DIR [-testhosts FILE] [-prefix P] [-pinned-prefix P]
//	    write a valid layout of N hosts with M slots each (see package
//	    fleetgen); with -testhosts, the hosts are those of the JSON that
//	    "testhosts up" prints (names and addresses, N = their number)
//	fleetgen populate -layout DIR -known-hosts FILE -identity FILE
//	    put the layout's files on its hosts over SSH as cyrplan apply
//	    does, without running any command on them (no slot is started);
//	    secrets come from the environment as for apply
//	fleetgen ansible -layout DIR -out DIR -known-hosts FILE -identity FILE
//	    write what scripts/ansible/play.yml needs to template the same
//	    files: an inventory, host_vars listing each host's files, and the
//	    files as Jinja templates (secrets filled in, as on the hosts)
//	fleetgen floor -layout DIR
//	    what CUE alone costs on the layout: load, unify with the schema,
//	    validate (fleetgen.Floor): the floor of cyrplan validate
//	fleetgen measure [-label L] -- COMMAND [ARG...]
//	    run COMMAND and print its wall, user and system time and its peak
//	    resident memory (ru_maxrss); exit with its status
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/fleetgen/populate"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/schema"
)

const usage = `usage:
  fleetgen layout -hosts N -slots M -out DIR [-testhosts FILE] [-prefix P] [-pinned-prefix P]
  fleetgen populate -layout DIR -known-hosts FILE -identity FILE
  fleetgen ansible -layout DIR -out DIR -known-hosts FILE -identity FILE
  fleetgen floor -layout DIR
  fleetgen measure [-label L] -- COMMAND [ARG...]
`

func main() {
	log.SetFlags(0)
	log.SetPrefix("fleetgen: ")
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "layout":
		err = layoutCmd(args)
	case "populate":
		err = populateCmd(args)
	case "ansible":
		err = ansibleCmd(args)
	case "floor":
		err = floorCmd(args)
	case "measure":
		err = measureCmd(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		log.Fatal(err)
	}
}

func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("fleetgen "+name, flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	return fs
}

// testhostsJSON is the part of "testhosts up" output fleetgen reads.
type testhostsJSON struct {
	KnownHosts string `json:"known_hosts"`
	Identity   string `json:"identity"`
	Hosts      []struct {
		Name string `json:"name"`
		Addr string `json:"addr"`
	} `json:"hosts"`
}

func layoutCmd(args []string) error {
	fs := flags("layout")
	var o fleetgen.Options
	fs.IntVar(&o.Hosts, "hosts", 10, "number of hosts")
	fs.IntVar(&o.SlotsPerHost, "slots", 10, "slots per host (even, 2 to 98)")
	out := fs.String("out", "", "layout directory to write")
	th := fs.String("testhosts", "", "JSON printed by testhosts up: use its hosts' names and addresses")
	fs.StringVar(&o.Prefix, "prefix", "", "prefix of the default build (default /usr/lib/cyrus)")
	fs.StringVar(&o.PinnedPrefix, "pinned-prefix", "", "prefix of the build every tenth store pins (default /usr/cyrusnew)")
	fs.Parse(args)
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	if *th != "" {
		data, err := os.ReadFile(*th)
		if err != nil {
			return err
		}
		var f testhostsJSON
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("%s: %w", *th, err)
		}
		o.Hosts = len(f.Hosts)
		for _, h := range f.Hosts {
			o.Names = append(o.Names, h.Name)
			o.Addresses = append(o.Addresses, h.Addr)
		}
	}
	if err := fleetgen.Write(*out, o); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d hosts, %d slots, %d stores\n", *out, o.Hosts, o.Hosts*o.SlotsPerHost, o.Hosts*o.SlotsPerHost/2)
	return nil
}

func populateCmd(args []string) error {
	fs := flags("populate")
	var c populate.Config
	fs.StringVar(&c.Layout, "layout", ".", "layout directory")
	fs.StringVar(&c.KnownHosts, "known-hosts", "", "known_hosts file")
	fs.StringVar(&c.Identity, "identity", "", "SSH private key file")
	fs.IntVar(&c.Parallelism, "parallelism", 16, "hosts at once")
	fs.Parse(args)
	start := time.Now()
	n, err := populate.Populate(context.Background(), c)
	if err != nil {
		return err
	}
	fmt.Printf("populated: %d files written in %s (no command run)\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// ansibleFile is one entry of a host's cyrplan_files list.
type ansibleFile struct {
	Src   string `json:"src"`
	Dest  string `json:"dest"`
	Mode  string `json:"mode"`
	Owner string `json:"owner"`
	Group string `json:"group"`
}

func ansibleCmd(args []string) error {
	fs := flags("ansible")
	dir := fs.String("layout", ".", "layout directory")
	out := fs.String("out", "", "directory to write (inventory.ini, host_vars/, files/)")
	known := fs.String("known-hosts", "", "known_hosts file")
	identity := fs.String("identity", "", "SSH private key file")
	fs.Parse(args)
	if *out == "" || *known == "" || *identity == "" {
		fs.Usage()
		os.Exit(2)
	}
	l, err := layout.Load(*dir)
	if err != nil {
		return err
	}
	t := render.Render(l)
	var names []string
	for _, h := range t.HostNames() {
		for _, f := range t.Hosts[h].Files {
			names = append(names, f.Secrets...)
		}
	}
	sort.Strings(names)
	names = compact(names)
	values, err := secret.Resolve(l, names, nil)
	if err != nil {
		return err
	}
	var inv strings.Builder
	inv.WriteString("[fleet]\n")
	for _, hn := range t.HostNames() {
		h := l.Hosts[hn]
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_port=%d ansible_user=%s\n", hn, h.Address, h.SSHPort, h.SSHUser)
		var list []ansibleFile
		for _, f := range t.Hosts[hn].Files {
			content, err := values.Fill(f.Content)
			if err != nil {
				return err
			}
			src := filepath.Join(*out, "files", hn, f.Path)
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				return err
			}
			// The rendered files are final: Jinja must copy them as they are.
			tmpl := append(append([]byte("{% raw %}"), content...), "{% endraw %}"...)
			if err := os.WriteFile(src, tmpl, 0o600); err != nil {
				return err
			}
			list = append(list, ansibleFile{Src: src, Dest: f.Path, Mode: fmt.Sprintf("%04o", f.Mode.Perm()), Owner: f.Owner, Group: f.Group})
		}
		data, err := json.MarshalIndent(map[string]any{"cyrplan_files": list}, "", " ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(*out, "host_vars"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*out, "host_vars", hn+".yml"), append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(&inv, "\n[fleet:vars]\nansible_ssh_private_key_file=%s\nansible_ssh_common_args=-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes\nansible_python_interpreter=/usr/bin/python3\n", *identity, *known)
	return os.WriteFile(filepath.Join(*out, "inventory.ini"), []byte(inv.String()), 0o644)
}

func compact(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func measureCmd(args []string) error {
	fs := flags("measure")
	label := fs.String("label", "", "name printed with the numbers (default: the command)")
	fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		fs.Usage()
		os.Exit(2)
	}
	if *label == "" {
		*label = strings.Join(argv, " ")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		return err
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var maxrss int64
	if ru != nil {
		maxrss = ru.Maxrss // KiB on Linux
	}
	fmt.Fprintf(os.Stderr, "measure: %s: wall %.3fs user %.3fs sys %.3fs maxrss %.1fMB exit %d\n", *label, wall.Seconds(),
		cmd.ProcessState.UserTime().Seconds(), cmd.ProcessState.SystemTime().Seconds(), float64(maxrss)/1024, cmd.ProcessState.ExitCode())
	return err
}

func floorCmd(args []string) error {
	fs := flags("floor")
	dir := fs.String("layout", "", "layout directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return errors.New("floor: -layout DIR, and nothing else")
	}
	src, err := schema.FS.ReadFile(schema.File)
	if err != nil {
		return err
	}
	return fleetgen.Floor(*dir, src)
}
