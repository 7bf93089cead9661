package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cyrplan/cyrplan/internal/cli"
	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/fleetgen/populate"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/testhosts"
)

// benchSecret is the replication password the benchmarks apply with.
const benchSecret = "bench-repl-pw"

// runCLI runs cyrplan in-process and fails b unless it exits with want.
// It returns stdout.
func runCLI(b *testing.B, want int, args ...string) string {
	b.Helper()
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), args, &out, &errb); code != want {
		tail := out.String()
		if len(tail) > 2000 {
			tail = "..." + tail[len(tail)-2000:]
		}
		b.Fatalf("cyrplan %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, tail, errb.String())
	}
	return out.String()
}

// BenchmarkLocal runs the cyrplan commands in-process on generated
// fleets of 100, 1,000 and 10,000 slots, hosts being directories
// (--root): validate; render --out (written to disk); plan of hosts that
// hold the applied layout (no change); and apply of the same (nothing
// to apply: lock, read, plan, unlock). The hosts are filled by one real
// cyrplan apply --root first, which is not timed.
func BenchmarkLocal(b *testing.B) {
	b.Setenv("CYRPLAN_SECRET_REPLICATION", benchSecret)
	for _, sz := range fleetgen.Sizes {
		b.Run(sz.Name, func(b *testing.B) {
			dir := fleetgen.TempDir(b, sz.Hosts, sz.SlotsPerHost)
			root := b.TempDir()
			out := runCLI(b, 0, "apply", "--auto-approve", "--root", root, "--layout", dir)
			if !strings.Contains(out, "Apply complete") {
				b.Fatalf("first apply: %s", out)
			}
			b.Run("validate", func(b *testing.B) {
				for b.Loop() {
					runCLI(b, 0, "validate", "--layout", dir)
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
			b.Run("render", func(b *testing.B) {
				tree := filepath.Join(b.TempDir(), "tree")
				for b.Loop() {
					runCLI(b, 0, "render", "--layout", dir, "--out", tree)
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
			b.Run("plan", func(b *testing.B) {
				for b.Loop() {
					out := runCLI(b, 0, "plan", "--detailed-exitcode", "--root", root, "--layout", dir)
					if !strings.Contains(out, "No changes") {
						b.Fatalf("plan: %s", out)
					}
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
			b.Run("apply-noop", func(b *testing.B) {
				for b.Loop() {
					out := runCLI(b, 0, "apply", "--auto-approve", "--root", root, "--layout", dir)
					if !strings.Contains(out, "Nothing to apply") {
						b.Fatalf("apply: %s", out)
					}
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
			// A first apply into empty hosts, and its floor: the same
			// directories and files made with plain os calls.
			b.Run("apply-first", func(b *testing.B) {
				base := b.TempDir()
				i := 0
				for b.Loop() {
					i++
					out := runCLI(b, 0, "apply", "--auto-approve", "--root", filepath.Join(base, strconv.Itoa(i)), "--layout", dir)
					if !strings.Contains(out, "Apply complete") {
						b.Fatalf("first apply: %s", out)
					}
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
			b.Run("apply-first-floor", func(b *testing.B) {
				l, err := layout.Load(dir)
				if err != nil {
					b.Fatal(err)
				}
				tree := render.Render(l)
				base := b.TempDir()
				i := 0
				for b.Loop() {
					i++
					if err := writeTree(filepath.Join(base, strconv.Itoa(i)), tree); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(sz.Slots()), "slots")
			})
		})
	}
}

// writeTree is the physical floor of a first apply with --root: every
// rendered directory and file of every host made under root, 16 hosts
// at once as apply does, with os.MkdirAll and os.WriteFile: no backup,
// no manifest, no role, no lock, no temporary file, no sync.
func writeTree(root string, tree *render.Tree) error {
	names := tree.HostNames()
	errs := make([]error, len(names))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, hn := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h := tree.Hosts[hn]
			for _, d := range h.Dirs {
				if err := os.MkdirAll(filepath.Join(root, hn, d.Path), 0o755); err != nil {
					errs[i] = err
					return
				}
			}
			for _, f := range h.Files {
				p := filepath.Join(root, hn, f.Path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					errs[i] = err
					return
				}
				if err := os.WriteFile(p, f.Content, 0o644); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkSSH plans fleets of 8, 16 and 32 simulated hosts (package
// testhosts: network namespaces, a real OpenSSH sshd each) with 8 slots
// each, all hosts holding the applied layout: "plan" is a no-change plan
// (connect, observe every managed file, directory, role, build and the
// manifest with one command per host, compare), "floor" its physical
// floor (floorOf), "plan-vs-floor" the two in turn, with their ratio,
// and "apply-noop" the apply of the plan (the same plus taking and
// releasing every host's lock).
//
// The hosts are filled first, untimed, by package populate: cyrplan's
// own plan and apply code over SSH, except that no command runs, so no
// slot is started. Starting 256 Cyrus masters (sequentially, each
// waiting for its banner) would take minutes and measure Cyrus, and a
// plan never asks whether a slot runs: it finds the same files either
// way. The layout's builds point at the installed Cyrus, whose presence
// plan checks on every host.
func BenchmarkSSH(b *testing.B) {
	testhosts.Require(b)
	if _, err := os.Stat(cyrusMaster); err != nil {
		if os.Getenv("CYRPLAN_E2E") == "1" {
			b.Fatalf("CYRPLAN_E2E=1 but Cyrus is not installed (%v): apt-get install cyrus-imapd", err)
		}
		b.Skipf("Cyrus is not installed (%v): plan checks that each host has the layout's build; apt-get install cyrus-imapd", err)
	}
	b.Setenv("CYRPLAN_SECRET_REPLICATION", benchSecret)
	for _, hosts := range benchSSHHosts(b) {
		b.Run(fmt.Sprintf("%dhosts", hosts), func(b *testing.B) {
			names := make([]string, hosts)
			for i := range names {
				names[i] = fmt.Sprintf("imap%d", i+1)
			}
			fl := testhosts.Up(b, names...)
			o := fleetgen.Options{Hosts: hosts, SlotsPerHost: 8, Names: names, Prefix: "/usr/lib/cyrus", PinnedPrefix: "/usr/lib/cyrus"}
			for _, n := range names {
				o.Addresses = append(o.Addresses, fl.Host(n).Addr)
			}
			dir := b.TempDir()
			if err := fleetgen.Write(dir, o); err != nil {
				b.Fatal(err)
			}
			files, err := populate.Populate(context.Background(), populate.Config{Layout: dir, KnownHosts: fl.KnownHosts, Identity: fl.Identity})
			if err != nil {
				b.Fatal(err)
			}
			if want := hosts * 8 * 5; files != want {
				b.Fatalf("populate wrote %d files, want %d", files, want)
			}
			// The first host holds what apply writes, secret filled in.
			data, err := os.ReadFile(filepath.Join(fl.Host(names[0]).Dir, "upper/etc/cyrus/slot101/imapd.conf"))
			if err != nil || !bytes.Contains(data, []byte(benchSecret)) {
				b.Fatalf("populate did not write slot101's imapd.conf with the secret: %v", err)
			}
			common := []string{"--layout", dir, "--known-hosts", fl.KnownHosts, "--identity", fl.Identity, "--parallelism", fmt.Sprint(hosts)}
			floor := floorOf(b, fl, dir, names)
			plan := func(b *testing.B) {
				out := runCLI(b, 0, append([]string{"plan", "--detailed-exitcode"}, common...)...)
				if !strings.Contains(out, "No changes") {
					b.Fatalf("plan: %s", out)
				}
			}
			b.Run("floor", func(b *testing.B) {
				for b.Loop() {
					if err := floor(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(hosts*8), "slots")
			})
			b.Run("plan", func(b *testing.B) {
				for b.Loop() {
					plan(b)
				}
				b.ReportMetric(float64(hosts*8), "slots")
			})
			// The plan against its floor, one after the other in every
			// iteration: the ratio of the two sums, each measured under
			// the same load.
			b.Run("plan-vs-floor", func(b *testing.B) {
				var inFloor, inPlan time.Duration
				for b.Loop() {
					t0 := time.Now()
					if err := floor(); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					plan(b)
					inFloor, inPlan = inFloor+t1.Sub(t0), inPlan+time.Since(t1)
				}
				b.ReportMetric(inFloor.Seconds()/float64(b.N), "floor-s/op")
				b.ReportMetric(inPlan.Seconds()/float64(b.N), "plan-s/op")
				b.ReportMetric(float64(inPlan)/float64(inFloor), "x-floor")
			})
			b.Run("apply-noop", func(b *testing.B) {
				for b.Loop() {
					out := runCLI(b, 0, append([]string{"apply", "--auto-approve"}, common...)...)
					if !strings.Contains(out, "Nothing to apply") {
						b.Fatalf("apply: %s", out)
					}
				}
				b.ReportMetric(float64(hosts*8), "slots")
			})
		})
	}
}

// benchSSHHosts are the fleet sizes of BenchmarkSSH: 8, 16 and 32 hosts,
// or those CYRPLAN_BENCH_SSH_HOSTS lists ("64,88": how the plan grows
// against its floor beyond 32 hosts).
func benchSSHHosts(b *testing.B) []int {
	env := os.Getenv("CYRPLAN_BENCH_SSH_HOSTS")
	if env == "" {
		return []int{8, 16, 32}
	}
	var sizes []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 250 {
			b.Fatalf("CYRPLAN_BENCH_SSH_HOSTS=%s: want host counts from 1 to 250, such as 64,88", env)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// floorOf is the physical floor of a no-change plan: from one process,
// connect to every host at once (x/crypto/ssh, the same key and
// known_hosts), run one command that hashes every managed file of the
// host, and read its answer. Nothing is parsed, compared or rendered.
// It returns one such round over the fleet.
func floorOf(b *testing.B, fl *testhosts.Fleet, dir string, names []string) func() error {
	l, err := layout.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	tree := render.Render(l)
	key, err := os.ReadFile(fl.Identity)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	known, err := knownhosts.New(fl.KnownHosts)
	if err != nil {
		b.Fatal(err)
	}
	cmds := map[string]string{}
	for _, n := range names {
		var c strings.Builder
		c.WriteString("sha256sum --")
		for _, f := range tree.Hosts[n].Files {
			c.WriteString(" " + shell.Quote(f.Path))
		}
		cmds[n] = c.String()
	}
	cfg := &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: known}
	return func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(names))
		for i, n := range names {
			wg.Go(func() {
				c, err := gossh.Dial("tcp", net.JoinHostPort(fl.Host(n).Addr, "22"), cfg)
				if err != nil {
					errs[i] = err
					return
				}
				defer c.Close()
				s, err := c.NewSession()
				if err != nil {
					errs[i] = err
					return
				}
				defer s.Close()
				out, err := s.Output(cmds[n])
				if err == nil && bytes.Count(out, []byte("\n")) != len(tree.Hosts[n].Files) {
					err = fmt.Errorf("%s: %d lines of hashes for %d files", n, bytes.Count(out, []byte("\n")), len(tree.Hosts[n].Files))
				}
				errs[i] = err
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}
