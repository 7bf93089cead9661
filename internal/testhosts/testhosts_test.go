package testhosts_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/testhosts"
)

// sshHostname runs "hostname" on addr with the OpenSSH client, the way
// cyrplan's users would, with strict host key checking.
func sshHostname(f *testhosts.Fleet, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", "-i", f.Identity,
		"-o", "UserKnownHostsFile="+f.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
		"root@"+addr, "hostname").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ssh %s: %w: %s", addr, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func wantHostname(t *testing.T, f *testhosts.Fleet, addr, want string) {
	t.Helper()
	got, err := sshHostname(f, addr)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("ssh %s: hostname %q, want %q", addr, got, want)
	}
}

func exec1(t *testing.T, h *testhosts.Host, cmd string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dial(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "22"), timeout)
	if err == nil {
		c.Close()
	}
	return err
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: want no such file, got %v", path, err)
	}
}

func TestFleet(t *testing.T) {
	testhosts.Require(t)
	t.Parallel()
	start := time.Now()
	f := testhosts.Up(t, "imap3", "imap5", "imap6")
	t.Logf("Up of 3 hosts on %s.0/24: %v", f.Subnet, time.Since(start))
	a, b, c := f.Host("imap3"), f.Host("imap5"), f.Host("imap6")
	probe := fmt.Sprintf("/etc/cyrplan-testhosts-probe-%d", os.Getpid())

	t.Run("ssh", func(t *testing.T) {
		for _, h := range []*testhosts.Host{a, b, c} {
			wantHostname(t, f, h.Addr, h.Name)
		}
	})

	t.Run("files", func(t *testing.T) {
		exec1(t, a, "echo on-imap3 >"+probe)
		if got, err := os.ReadFile(a.Path(probe)); err != nil || string(got) != "on-imap3\n" {
			t.Fatalf("%s via Path: %q, %v", probe, got, err)
		}
		if got, err := os.ReadFile(filepath.Join(a.Dir, "upper", probe)); err != nil || string(got) != "on-imap3\n" {
			t.Fatalf("%s in the upper layer: %q, %v", probe, got, err)
		}
		exec1(t, b, "test ! -e "+probe)
		mustNotExist(t, b.Path(probe))
		mustNotExist(t, probe)

		exec1(t, a, "mkdir /usr/cyrusnew && touch /usr/cyrusnew/master")
		exec1(t, b, "test ! -e /usr/cyrusnew")
		mustNotExist(t, "/usr/cyrusnew")

		// /mnt, /run and /tmp are the host's own.
		exec1(t, a, "touch /mnt/m /run/r /tmp/t")
		for _, p := range []string{"mnt/m", "run/r", "tmp/t"} {
			if _, err := os.Stat(filepath.Join(a.Dir, p)); err != nil {
				t.Error(err)
			}
		}
		exec1(t, b, "test ! -e /mnt/m && test ! -e /run/r && test ! -e /tmp/t")
		if got := exec1(t, a, "hostname; cat /etc/hostname"); got != "imap3\nimap3\n" {
			t.Errorf("hostname: %q", got)
		}
	})

	t.Run("pid1 reaps orphans", func(t *testing.T) {
		out := exec1(t, a, `(sleep 0.05 &); sleep 0.5; for s in /proc/[0-9]*/stat; do read -r l <"$s" && echo "$l"; done`)
		for _, l := range strings.Split(out, "\n") {
			if fs := strings.Fields(l); len(fs) > 2 && fs[2] == "Z" {
				t.Errorf("zombie in the host: %s", l)
			}
		}
	})

	t.Run("floating address", func(t *testing.T) {
		fl := f.FloatingAddr(1)
		if err := f.TrustFloating(fl); err != nil {
			t.Fatal(err)
		}
		garp := fmt.Sprintf("ip addr add %s/32 dev eth0 && arping -q -U -c1 -I eth0 -s %s %s", fl, fl, fl)
		exec1(t, a, garp)
		wantHostname(t, f, fl, "imap3")
		if h, err := f.Holder(fl); err != nil || h != "imap3" {
			t.Fatalf("Holder(%s) = %q, %v", fl, h, err)
		}
		// Move it the way a failover script would. The root namespace has
		// imap3's MAC cached for it: the gratuitous ARP must fix that.
		exec1(t, a, "ip addr del "+fl+"/32 dev eth0")
		exec1(t, b, garp)
		start := time.Now()
		wantHostname(t, f, fl, "imap5")
		t.Logf("ssh after the move: %v", time.Since(start))
		if h, err := f.Holder(fl); err != nil || h != "imap5" {
			t.Fatalf("Holder(%s) = %q, %v", fl, h, err)
		}
		// And a move with a neighbour flush instead of the gratuitous ARP.
		exec1(t, b, "ip addr del "+fl+"/32 dev eth0")
		exec1(t, c, "ip addr add "+fl+"/32 dev eth0")
		if err := f.FlushNeigh(fl); err != nil {
			t.Fatal(err)
		}
		wantHostname(t, f, fl, "imap6")
		exec1(t, c, "ip addr del "+fl+"/32 dev eth0")
		if h, err := f.Holder(fl); err != nil || h != "" {
			t.Fatalf("Holder(%s) = %q, %v after del", fl, h, err)
		}
	})

	t.Run("cut", func(t *testing.T) {
		if err := dial(c.Addr, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := c.Cut(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := dial(c.Addr, 2*time.Second)
		var ne net.Error
		if err == nil || errors.Is(err, syscall.ECONNREFUSED) || !(errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EHOSTUNREACH)) {
			t.Fatalf("connect to a cut host: %v, want a timeout or no route to host", err)
		}
		t.Logf("connect to a cut host: %v after %v", err, time.Since(start))
		if err := c.Uncut(); err != nil {
			t.Fatal(err)
		}
		wantHostname(t, f, c.Addr, "imap6")
	})

	t.Run("sshd", func(t *testing.T) {
		if err := b.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		if err := dial(b.Addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect with sshd stopped: %v, want connection refused", err)
		}
		exec1(t, b, "true") // the host itself runs on
		if err := b.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		wantHostname(t, f, b.Addr, "imap5")
	})

	t.Run("crash and boot", func(t *testing.T) {
		exec1(t, c, "echo kept >/etc/crash-probe && touch /run/gone && ip addr add "+f.FloatingAddr(2)+"/32 dev eth0")
		if err := c.Crash(); err != nil {
			t.Fatal(err)
		}
		if err := dial(c.Addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect to a crashed host: %v, want connection refused", err)
		}
		if _, err := c.Exec(context.Background(), "true"); err == nil {
			t.Fatal("Exec on a crashed host worked")
		}
		start := time.Now()
		if err := c.Boot(); err != nil {
			t.Fatal(err)
		}
		t.Logf("Boot: %v", time.Since(start))
		wantHostname(t, f, c.Addr, "imap6")
		if got := exec1(t, c, "cat /etc/crash-probe; test ! -e /run/gone && echo run emptied"); got != "kept\nrun emptied\n" {
			t.Errorf("after boot: %q, want /etc kept and /run emptied", got)
		}
		if h, err := f.Holder(f.FloatingAddr(2)); err != nil || h != "" {
			t.Errorf("floating address after boot on %q (%v), want gone", h, err)
		}
	})
}

// TestTeardown runs a fleet in a subtest, whose cleanup tears it down, and
// checks that nothing of it is left. It runs in parallel with TestFleet, so
// that two fleets exist at once.
func TestTeardown(t *testing.T) {
	testhosts.Require(t)
	t.Parallel()
	var f *testhosts.Fleet
	marker := fmt.Sprintf("%d.%d", os.Getpid(), time.Now().UnixNano()%1e6)
	var down time.Time
	t.Run("up", func(t *testing.T) {
		f = testhosts.Up(t, "t1", "t2")
		// A daemon started in a host must die with it.
		exec1(t, f.Host("t1"), "setsid sleep "+marker+" </dev/null >/dev/null 2>&1 &")
		exec1(t, f.Host("t2"), "ip addr add "+f.FloatingAddr(0)+"/32 dev eth0")
		wantHostname(t, f, f.Host("t2").Addr, "t2")
		t.Cleanup(func() { down = time.Now() })
	})
	t.Logf("teardown: %v", time.Since(down))

	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), f.Bridge+"-") {
		t.Errorf("network namespaces left:\n%s", out)
	}
	out, err = exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), f.Bridge) {
		t.Errorf("links left:\n%s", out)
	}
	out, err = exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), f.Subnet+".") {
		t.Errorf("routes left:\n%s", out)
	}
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && (strings.Contains(string(b), marker) || strings.Contains(string(b), f.Dir)) {
			t.Errorf("process left: %s: %q", p, b)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), f.Dir) {
		t.Errorf("mounts left:\n%s", mounts)
	}
	mustNotExist(t, f.Dir)
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
