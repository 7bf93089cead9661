package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
)

// slots of the test layout: name -> host, partition.
var slots = map[string]struct {
	host string
	part int
}{
	"slot608": {"imap6", 8}, "slot308": {"imap3", 8},
	"slot908": {"imap9", 8}, "slot503": {"imap5", 3},
	"slot301": {"imap3", 1}, "slot501": {"imap5", 1},
	"slot602": {"imap6", 2}, "slot902": {"imap9", 2},
}

// TestPlanApply walks the plan/apply cycle on real hosts and real Cyrus:
// from empty hosts to a running fleet, replication, a one-store change
// that reloads only that store, a build pin that needs the build on the
// host, drift, a host cut off, and cyrplan killed mid-apply.
func TestPlanApply(t *testing.T) {
	w := newWorld(t)

	// From empty hosts: every slot is to be added and started.
	out, _, code := w.cyrplan("plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "Plan: 8 slots to add, 0 to change, 0 to remove; 8 starts, 0 restarts, 0 reloads, 0 stops.") {
		t.Fatalf("first plan: exit %d\n%s", code, out)
	}
	out, errOut, code := w.cyrplan("apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("first apply: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cr3t-repl-pw") {
		t.Fatal("the replication password appears in apply's output")
	}
	for name, s := range slots {
		if err := health.Banner(ctxTimeout(t, 5*time.Second), w.addr(s.host, s.part), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		conf, err := os.ReadFile(w.fleet.Host(s.host).Path("/etc/cyrus/" + name + "/imapd.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(conf), "<<secret:") {
			t.Errorf("%s imapd.conf still holds a secret marker", name)
		}
	}
	// Nothing left to do.
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 || !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}

	// Rolling replication: a message appended on store23's master
	// reaches its replica.
	admin := dialIMAP(t, w.addr("imap6", 8))
	admin.do(t, "LOGIN cyrus x")
	admin.do(t, "CREATE user/brong")
	appendMessage(t, w.addr("imap6", 8), "brong", "first")
	eventually(t, 20*time.Second, "message on the replica slot308", func() error {
		n, err := count(t, w.addr("imap3", 8), "brong")
		if err == nil && n != 1 {
			err = fmt.Errorf("%d messages", n)
		}
		return err
	})

	// One store's option: only that store's files, only its slots
	// reloaded, masters keep their pids.
	pids := map[string]int{}
	for name, s := range slots {
		pids[name] = w.masterPID(s.host, name)
	}
	w.params.Quota = "skiplist"
	w.writeLayout()
	out, _, code = w.cyrplan("plan", "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan: exit %d", code)
	}
	for _, want := range []string{"~ /etc/cyrus/slot608/imapd.conf", "~ /etc/cyrus/slot308/imapd.conf", "~ quota_db: twoskip => skiplist",
		"Plan: 0 slots to add, 2 to change, 0 to remove; 0 starts, 0 restarts, 2 reloads, 0 stops."} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if n := strings.Count(out, "\n    ~ "); n != 2 {
		t.Errorf("plan changes %d files; want exactly store23's two", n)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Error("the plan shows the secret")
	}
	planFile := filepath.Join(t.TempDir(), "store23.plan")
	if _, _, code := w.cyrplan("plan", "--out", planFile); code != 0 {
		t.Fatal("plan --out failed")
	}
	if data, _ := os.ReadFile(planFile); strings.Contains(string(data), "s3cr3t") {
		t.Error("the plan file holds the secret")
	}
	if out, errOut, code := w.cyrplan("apply", planFile); code != 0 || strings.Count(out, ": reload ok") != 2 {
		t.Fatalf("apply of the saved plan: exit %d\n%s%s", code, out, errOut)
	}
	for name, s := range slots {
		if pid := w.masterPID(s.host, name); pid != pids[name] {
			t.Errorf("%s master pid %d -> %d: reload restarted it", name, pids[name], pid)
		}
	}
	// The saved plan was applied: applying it again says so, and does nothing.
	if out, errOut, code := w.cyrplan("apply", planFile); code != 0 || !strings.Contains(out, "was applied already") {
		t.Errorf("re-applying a used plan: exit %d %s%s", code, out, errOut)
	}

	// A hand edit on a host is drift.
	conf := w.fleet.Host("imap9").Path("/etc/cyrus/slot908/imapd.conf")
	appendFile(t, conf, "# edited by hand\n")
	out, _, _ = w.cyrplan("plan")
	if !strings.Contains(out, "~ /etc/cyrus/slot908/imapd.conf [drift: changed on the host]") || !strings.Contains(out, "imap9:/etc/cyrus/slot908/imapd.conf") {
		t.Errorf("hand edit not shown as drift:\n%s", out)
	}
	if _, _, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatal("apply after drift failed")
	}

	// Pin store23 to /usr/cyrusnew: refused while imap3 lacks it.
	if _, err := w.fleet.Host("imap6").Exec(ctxTimeout(t, time.Minute), "cp -a /usr/lib/cyrus/. /usr/cyrusnew/"); err != nil {
		t.Fatal(err)
	}
	w.params.Pin23 = true
	w.writeLayout()
	out, _, code = w.cyrplan("plan")
	if code != 1 || !strings.Contains(out, "imap3: Cyrus build 3.6.1-new is not installed: /usr/cyrusnew/bin/master is missing (needed by slot308)") {
		t.Fatalf("plan with a missing build: exit %d\n%s", code, out)
	}
	if _, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 1 || !strings.Contains(errOut, "refusing") {
		t.Fatalf("apply with a missing build: exit %d %s", code, errOut)
	}
	if _, err := w.fleet.Host("imap3").Exec(ctxTimeout(t, time.Minute), "cp -a /usr/lib/cyrus/. /usr/cyrusnew/"); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 || strings.Count(out, ": restart ok") != 2 {
		t.Fatalf("apply of the pin: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []struct{ host, slot string }{{"imap6", "slot608"}, {"imap3", "slot308"}} {
		exe, err := w.fleet.Host(s.host).Exec(ctxTimeout(t, 10*time.Second), "readlink /proc/$(cat /run/cyrus-"+s.slot+".pid)/exe")
		exe = strings.TrimSpace(exe)
		if err != nil || exe != "/usr/cyrusnew/bin/master" {
			t.Errorf("%s master runs %q (%v); want /usr/cyrusnew/bin/master", s.slot, exe, err)
		}
	}
	appendMessage(t, w.addr("imap6", 8), "brong", "after the pin")
	eventually(t, 20*time.Second, "replication on the pinned build", func() error {
		n, err := count(t, w.addr("imap3", 8), "brong")
		if err == nil && n != 2 {
			err = fmt.Errorf("%d messages", n)
		}
		return err
	})

	// A host cut off: it fails alone, the others change, exit 3; once
	// it is back a second run converges.
	w.params.Extras = `imapd: quotawarn: 80`
	w.writeLayout()
	if err := w.fleet.Host("imap5").Cut(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = w.cyrplan("apply", "--auto-approve", "--connect-timeout", "2s")
	if code != 3 || !strings.Contains(errOut, "imap5") {
		t.Fatalf("apply with imap5 cut off: exit %d\n%s%s", code, out, errOut)
	}
	if err := w.fleet.Host("imap5").Uncut(); err != nil {
		t.Fatal(err)
	}
	if _, _, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatal("apply after imap5 is back failed")
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("not converged:\n%s", out)
	}

	// cyrplan killed mid-apply: no file is half-written, a re-run
	// (which breaks the dead process's locks) converges.
	bin := buildCyrplan(t)
	w.params.Extras = `imapd: quotawarn: 85`
	w.writeLayout()
	cmd := exec.Command(bin, "apply", "--auto-approve", "--layout", w.layout, "--known-hosts", w.fleet.KnownHosts, "--identity", w.fleet.Identity, "--parallelism", "1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), ": updated ") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	l, err := layout.Load(w.layout)
	if err != nil {
		t.Fatal(err)
	}
	tree := render.Render(l)
	for _, hn := range tree.HostNames() {
		for _, f := range tree.Hosts[hn].Files {
			if f.Kind != render.IMAPDConf {
				continue
			}
			got, err := os.ReadFile(w.fleet.Host(hn).Path(f.Path))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(got), "quotawarn: 80\nsasl_mech_list: PLAIN\nsasl_pwcheck_method: alwaystrue\nsync_repeat_interval: 0\n") &&
				!strings.HasSuffix(string(got), "quotawarn: 85\nsasl_mech_list: PLAIN\nsasl_pwcheck_method: alwaystrue\nsync_repeat_interval: 0\n") {
				t.Errorf("%s:%s is neither the old nor the new version:\n%s", hn, f.Path, got)
			}
		}
	}
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 || !strings.Contains(errOut, "breaking the stale lock") {
		t.Fatalf("re-run after SIGKILL: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("not converged after the kill:\n%s", out)
	}

	// SIGINT mid-apply: the file in flight is finished, the actions
	// stop, the locks are released (the next run has none to break),
	// and the next run converges.
	w.params.Extras = `imapd: quotawarn: 90`
	w.writeLayout()
	cmd = exec.Command(bin, "apply", "--auto-approve", "--layout", w.layout, "--known-hosts", w.fleet.KnownHosts, "--identity", w.fleet.Identity, "--parallelism", "1")
	stdout, _ = cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc = bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), ": updated ") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() {
	}
	err = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 3 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("apply interrupted by SIGINT: %v\n%s", err, stderr.String())
	}
	for _, hn := range tree.HostNames() {
		if _, err := os.Stat(w.fleet.Host(hn).Path("/var/lib/cyrplan/lock")); !os.IsNotExist(err) {
			t.Errorf("%s: the lock is still there after SIGINT (%v)", hn, err)
		}
		tmps, _ := filepath.Glob(w.fleet.Host(hn).Path("/etc/cyrus/*/.cyrplan-tmp-*"))
		if len(tmps) > 0 {
			t.Errorf("%s: temporary files left after SIGINT: %q", hn, tmps)
		}
	}
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 || strings.Contains(errOut, "breaking the stale lock") {
		t.Fatalf("re-run after SIGINT: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("not converged after SIGINT:\n%s", out)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// buildCyrplan builds the cyrplan binary for tests that must kill it.
func buildCyrplan(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cyrplan")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cyrplan/cyrplan/cmd/cyrplan").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
