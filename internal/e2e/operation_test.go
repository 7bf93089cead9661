package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stepLine is how an operation logs a step done: "[3/6] store23 …: ok".
var stepLine = regexp.MustCompile(`^\[[0-9]+/[0-9]+\] `)

// TestOperationKillResume: a saved failover is killed (SIGKILL) after
// each step in turn and run again at once: it resumes from the first
// step not done, finishes, and says so when run once more; the store
// then has one master, and every message appended through the floating
// master address before, between and after the runs is on both slots.
func TestOperationKillResume(t *testing.T) {
	o := newOpWorld(t)
	w, bin, hostArgs := o.w, o.bin, o.hostArgs
	o.send("before the operations")

	// Each failover of the store is killed after its n-th step, n = 1 to
	// 6, alternating direction; the run after the kill resumes it.
	for n := 1; n <= 6; n++ {
		plan := filepath.Join(t.TempDir(), "op.json")
		if r := runBin(t, bin, append([]string{"failover", "store23", "--out", plan}, hostArgs...)...); r.code != 0 {
			t.Fatalf("failover --out: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		apply := append([]string{"apply", plan}, hostArgs...)
		r := runBinKilled(t, bin, killAt{line: nthLine(stepLine, n)}, apply...)
		if !r.killed {
			t.Fatalf("round %d: the operation was not killed after step %d (exit %d)\n%s%s", n, n, r.code, r.stdout, r.stderr)
		}
		t.Logf("round %d: killed after step %d: %s", n, n, lastLine(r.stdout))
		r = runBin(t, bin, apply...)
		if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("Resuming failover store23: %d of 7 steps are done.", n)) || !strings.Contains(r.stdout, "Operation complete") {
			t.Fatalf("round %d: the run after the kill: exit %d\n%s%s", n, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "[1/7]") {
			t.Errorf("round %d: the resumed run did step 1 again:\n%s", n, r.stdout)
		}
		if r := runBin(t, bin, apply...); r.code != 0 || !strings.Contains(r.stdout, "was applied already") {
			t.Errorf("round %d: the finished operation run again: exit %d\n%s%s", n, r.code, r.stdout, r.stderr)
		}
		o.send(fmt.Sprintf("after round %d", n))
	}

	// One master, and every message on both slots.
	out, _, code := w.cyrplan("status", "--format", "json")
	if code != 0 || strings.Count(out, `"currentMasters": [`) == 0 {
		t.Errorf("status after the operations: exit %d\n%s", code, out)
	}
	for _, s := range []struct{ host, slot string }{{"imap6", "slot608"}, {"imap3", "slot308"}} {
		eventually(t, 30*time.Second, "every message on "+s.slot, func() error { return wantMessages(t, w.addr(s.host, 8), "brong", o.sent) })
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestDrainFailback: drain of a host with two masters on real hosts
// moves both, each to its replica, spread over two hosts; the host then
// holds no master; failback --all brings them back and MOVED is empty;
// mail appended through the floating master addresses before, between
// and after is on both slots of each store.
func TestDrainFailback(t *testing.T) {
	w := newWorld(t)
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	type store struct {
		name, float  string
		mhost, rhost string // the hosts of the preferred master and of the replica
		mpart, rpart int
	}
	stores := []store{
		{name: "store23", float: w.fleet.FloatingAddr(23), mhost: "imap6", mpart: 8, rhost: "imap3", rpart: 8},
		{name: "store69", float: w.fleet.FloatingAddr(69), mhost: "imap6", mpart: 2, rhost: "imap9", rpart: 2},
	}
	users := map[string]string{"store23": "brong", "store69": "ellie"}
	sent := map[string][]string{}
	send := func(when string) {
		t.Helper()
		for _, s := range stores {
			w.fleet.FlushNeigh(s.float)
			eventually(t, 20*time.Second, s.name+"'s floating master address answers", func() error {
				_, err := floatingBanner(s.float)
				return err
			})
			sent[s.name] = append(sent[s.name], appendMessage(t, s.float+":143", users[s.name], when))
		}
	}
	for _, s := range stores {
		w.fleet.FlushNeigh(s.float)
		admin := dialIMAP(t, s.float+":143")
		admin.do(t, "LOGIN cyrus x")
		admin.do(t, "CREATE user/%s", users[s.name])
	}
	send("before the drain")

	out, errOut, code := w.cyrplan("drain", "imap6", "--auto-approve")
	if code != 0 || !strings.Contains(out, "restart slot308 on imap3 as master") || !strings.Contains(out, "restart slot902 on imap9 as master") {
		t.Fatalf("drain imap6: exit %d\n%s%s", code, out, errOut)
	}
	status, _, _ := w.cyrplan("status")
	for _, want := range []string{"store23   slot608 => slot308", "store69   slot602 => slot902"} {
		if !strings.Contains(status, want) {
			t.Errorf("status after the drain lacks %q:\n%s", want, status)
		}
	}
	send("after the drain")

	if out, errOut, code := w.cyrplan("failback", "--all", "--auto-approve"); code != 0 {
		t.Fatalf("failback --all: exit %d\n%s%s", code, out, errOut)
	}
	if status, _, code := w.cyrplan("status"); code != 0 || strings.Contains(status, "MOVED") {
		t.Errorf("status after failback --all: exit %d\n%s", code, status)
	}
	send("after the failback")

	for _, s := range stores {
		for _, at := range []struct {
			host string
			part int
		}{{s.mhost, s.mpart}, {s.rhost, s.rpart}} {
			eventually(t, 30*time.Second, fmt.Sprintf("%s's messages on %s", s.name, at.host), func() error {
				return wantMessages(t, w.addr(at.host, at.part), users[s.name], sent[s.name])
			})
		}
	}
}

// opWorld is the world of the operation tests: the hosts applied with
// the cyrplan binary, user/brong created on store23, and the Message-Ids
// of what send appended through store23's floating master address.
type opWorld struct {
	w        *world
	bin      string
	hostArgs []string
	float    string
	sent     []string
}

func newOpWorld(t *testing.T) *opWorld {
	t.Helper()
	w := newWorld(t)
	o := &opWorld{w: w, bin: buildCyrplan(t), float: w.fleet.FloatingAddr(23),
		hostArgs: []string{"--layout", w.layout, "--known-hosts", w.fleet.KnownHosts, "--identity", w.fleet.Identity}}
	if r := runBin(t, o.bin, append([]string{"apply", "--auto-approve", "--allow-dirty"}, o.hostArgs...)...); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w.fleet.FlushNeigh(o.float)
	admin := dialIMAP(t, o.float+":143")
	admin.do(t, "LOGIN cyrus x")
	admin.do(t, "CREATE user/brong")
	return o
}

// send appends a message to user/brong through the floating master
// address, once it answers.
func (o *opWorld) send(when string) {
	t := o.w.t
	t.Helper()
	o.w.fleet.FlushNeigh(o.float)
	eventually(t, 20*time.Second, "the floating master address answers", func() error {
		_, err := floatingBanner(o.float)
		return err
	})
	o.sent = append(o.sent, appendMessage(t, o.float+":143", "brong", when))
}

// killResume saves the operation planArgs make, runs it with cyrplan
// apply killed (SIGKILL) after its n-th step, and runs it again: it must
// resume after step n and finish, canary gate included.
func killResume(t *testing.T, bin string, hostArgs []string, n int, planArgs ...string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "op.json")
	if r := runBin(t, bin, append(append(planArgs, "--out", file), hostArgs...)...); r.code != 0 {
		t.Fatalf("%s --out: exit %d\n%s%s", strings.Join(planArgs, " "), r.code, r.stdout, r.stderr)
	}
	apply := append([]string{"apply", file}, hostArgs...)
	r := runBinKilled(t, bin, killAt{line: nthLine(stepLine, n)}, apply...)
	if !r.killed {
		t.Fatalf("%s: not killed after step %d (exit %d)\n%s%s", strings.Join(planArgs, " "), n, r.code, r.stdout, r.stderr)
	}
	t.Logf("%s: killed after %s", strings.Join(planArgs, " "), lastLine(r.stdout))
	r = runBin(t, bin, apply...)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf(": %d of ", n)) || !strings.Contains(r.stdout, "Operation complete") {
		t.Fatalf("%s resumed: exit %d\n%s%s", strings.Join(planArgs, " "), r.code, r.stdout, r.stderr)
	}
}

// TestOperationsKillResume: a drain, a failback, a rolling upgrade and a
// slot move, each SIGKILLed in the middle, resume and finish; every
// message is on every slot of the store at the end, and the config plan
// is empty.
func TestOperationsKillResume(t *testing.T) {
	o := newOpWorld(t)
	w, bin, hostArgs := o.w, o.bin, o.hostArgs
	o.send("before")

	killResume(t, bin, hostArgs, 3, "drain", "imap6")
	o.send("after the drain")
	killResume(t, bin, hostArgs, 9, "failback", "--all")
	o.send("after the failback")

	for _, h := range []string{"imap6", "imap3"} {
		if _, err := w.fleet.Host(h).Exec(ctxTimeout(t, time.Minute), "cp -a /usr/lib/cyrus/. /usr/cyrusnew/"); err != nil {
			t.Fatal(err)
		}
	}
	w.params.Pin23 = true
	w.writeLayout()
	killResume(t, bin, hostArgs, 6, "upgrade", "store23")
	o.send("after the upgrade")

	w.params.Replica23 = "slot508"
	w.writeLayout()
	if _, err := w.fleet.Host("imap5").Exec(ctxTimeout(t, time.Minute), "cp -a /usr/lib/cyrus/. /usr/cyrusnew/"); err != nil {
		t.Fatal(err)
	}
	killResume(t, bin, hostArgs, 3, "move", "store23", "--from", "slot308", "--to", "slot508")
	o.send("after the move")

	for _, at := range []struct {
		host string
		part int
	}{{"imap6", 8}, {"imap5", 8}} {
		eventually(t, 30*time.Second, "every message on "+at.host, func() error { return wantMessages(t, w.addr(at.host, at.part), "brong", o.sent) })
	}
	if r := runBin(t, bin, append([]string{"plan", "--detailed-exitcode"}, hostArgs...)...); r.code != 0 {
		t.Errorf("the config plan after the operations: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
