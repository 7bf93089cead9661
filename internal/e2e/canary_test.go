package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/canary"
)

// TestCanary: the replication canary on real Cyrus. A canary appended
// through store23's floating master address reaches its replica slot308;
// with slot308's sync_server hung, and then with slot308 stopped, the
// gate fails within its deadline and says why; once slot308 is back, the
// gate passes again.
func TestCanary(t *testing.T) {
	w := newWorld(t)
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	float := w.fleet.FloatingAddr(23)
	w.fleet.FlushNeigh(float)
	master := float + ":143"
	replica := w.addr("imap3", 8) // slot308
	cfg := canary.Config{User: "cyrus", Password: "x", Timeout: 20 * time.Second}
	short := cfg
	short.Timeout = 3 * time.Second

	check := func(what string, c canary.Config) (time.Duration, error) {
		t.Helper()
		start := time.Now()
		got, err := canary.Check(ctxTimeout(t, 2*c.Timeout+10*time.Second), master, []string{replica}, c)
		t.Logf("canary %s: arrived %v, check took %s, err %v", what, got, time.Since(start).Round(time.Millisecond), err)
		return got[replica], err
	}
	pass := func(what string, c canary.Config) time.Duration {
		t.Helper()
		d, err := check(what, c)
		if err != nil {
			t.Fatalf("canary %s: %v", what, err)
		}
		if d <= 0 || d >= c.Timeout {
			t.Fatalf("canary %s: arrival time %s", what, d)
		}
		return d
	}
	fail := func(what string, wants ...string) {
		t.Helper()
		start := time.Now()
		_, err := check(what, short)
		took := time.Since(start)
		var na *canary.NotArrivedError
		if !errors.As(err, &na) || na.Replica != replica {
			t.Fatalf("canary %s: %v; want it not to arrive on %s", what, err, replica)
		}
		if took > short.Timeout+5*time.Second {
			t.Errorf("canary %s: the gate took %s with a %s deadline", what, took, short.Timeout)
		}
		for _, want := range append([]string{"did not reach replica " + replica, "(mailbox user/cyrplan-canary)", "within 3"}, wants...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("canary %s: error %q lacks %q", what, err, want)
			}
		}
	}

	// The first canary creates the mailbox (and its ACL) on the master;
	// replication creates it on the replica.
	first := pass("first", cfg)
	t.Logf("first canary reached slot308 in %d ms", first.Milliseconds())
	var steady []string
	for i := range 5 {
		steady = append(steady, fmt.Sprint(pass(fmt.Sprintf("steady %d", i+1), cfg).Milliseconds()))
	}
	t.Logf("next canaries reached slot308 in %s ms", strings.Join(steady, ", "))
	// The canary mailbox is the canary user's own; the admin's ACL entry
	// replicated with it, so the replica lets the admin read it.
	adm := dialIMAP(t, replica)
	adm.do(t, "LOGIN cyrus x")
	acl := strings.Join(adm.do(t, "GETACL user/cyrplan-canary"), "\n")
	f := strings.Fields(acl)
	var rights string
	for i := 3; i+1 < len(f); i += 2 { // * ACL mailbox (id rights)...
		if f[i] == "cyrus" {
			rights = f[i+1]
		}
	}
	if strings.Trim("rite", rights) != "" {
		t.Errorf("ACL of the canary mailbox on the replica: %s; want cyrus to have rite", acl)
	}
	t.Logf("on the replica: %s", acl)

	// slot308's sync_server hangs (SIGSTOP): slot308 still answers IMAP,
	// but nothing replicates.
	h3 := w.fleet.Host("imap3")
	pids, err := h3.Exec(ctxTimeout(t, 10*time.Second), fmt.Sprintf("pgrep -P %d -x sync_server", w.masterPID("imap3", "slot308")))
	pids = strings.Join(strings.Fields(pids), " ")
	if err != nil || pids == "" {
		t.Fatalf("slot308's sync_server: %q, %v", pids, err)
	}
	stopped := false
	resume := func() {
		if !stopped {
			return
		}
		stopped = false
		if out, err := h3.Exec(ctxTimeout(t, 10*time.Second), "kill -CONT "+pids); err != nil {
			t.Errorf("kill -CONT %s: %v\n%s", pids, err, out)
		}
	}
	t.Cleanup(resume) // should the test stop while it is stopped
	if out, err := h3.Exec(ctxTimeout(t, 10*time.Second), "kill -STOP "+pids); err != nil {
		t.Fatalf("kill -STOP %s: %v\n%s", pids, err, out)
	}
	stopped = true
	fail("with slot308's sync_server stopped", "last: not there")
	resume()
	t.Logf("canary after slot308's sync_server resumed reached slot308 in %d ms", pass("after sync_server resumed", cfg).Milliseconds())

	// slot308 stopped: the replica does not answer at all.
	if out, err := h3.Exec(ctxTimeout(t, time.Minute), "/etc/init.d/cyrus-slot308 stop"); err != nil {
		t.Fatalf("stopping slot308: %v\n%s", err, out)
	}
	fail("with slot308 stopped", "connection refused")
	if out, err := h3.Exec(ctxTimeout(t, time.Minute), "/etc/init.d/cyrus-slot308 start"); err != nil {
		t.Fatalf("starting slot308: %v\n%s", err, out)
	}
	// The master's sync_client reconnects with its own back-off (Cyrus
	// waits 15s, then 30s, ... between attempts), so the first canary
	// after the replica is back may take that long.
	back := cfg
	back.Timeout = 90 * time.Second
	t.Logf("canary after slot308 restarted reached slot308 in %d ms", pass("after slot308 restarted", back).Milliseconds())
	t.Logf("the next one in %d ms", pass("once replication caught up", cfg).Milliseconds())

	// Eleven canaries were sent; each check that passed pruned the
	// master's down to the newest ten, and the expunge replicated.
	for _, at := range []string{master, replica} {
		eventually(t, 20*time.Second, "ten canaries on "+at, func() error {
			n, err := canaryCount(at)
			if err == nil && n != canary.Keep {
				err = fmt.Errorf("%d canaries", n)
			}
			return err
		})
	}
}

// canaryCount is how many messages the canary mailbox holds on addr.
func canaryCount(addr string) (int, error) {
	m, err := dialIMAPErr(addr)
	if err != nil {
		return 0, err
	}
	defer m.c.Close()
	if _, err := m.try("LOGIN cyrus x"); err != nil {
		return 0, err
	}
	lines, err := m.try("EXAMINE user/cyrplan-canary")
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l, "* %d EXISTS", &n); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no EXISTS in %q", lines)
}
