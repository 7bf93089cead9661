package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// floatingBanner reads the greeting on a store's floating master address
// and returns the slot that answers.
func floatingBanner(addr string) (string, error) {
	m, err := dialIMAPErr(addr + ":143")
	if err != nil {
		return "", err
	}
	defer m.c.Close()
	for _, w := range strings.Fields(m.greeting) {
		if strings.HasPrefix(w, "slot") {
			return w, nil
		}
	}
	return "", fmt.Errorf("greeting %q names no slot", m.greeting)
}

// TestFleetOperations: status, run, locate and failover on real hosts.
func TestFleetOperations(t *testing.T) {
	w := newWorld(t)
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	float := w.fleet.FloatingAddr(23)
	w.fleet.FlushNeigh(float)

	// Mail through the store's floating master address.
	admin := dialIMAP(t, float+":143")
	admin.do(t, "LOGIN cyrus x")
	admin.do(t, "CREATE user/brong")
	appendMessage(t, float+":143", "brong", "before failover")
	eventually(t, 20*time.Second, "first message on slot308", func() error { return wantCount(t, w.addr("imap3", 8), "brong", 1) })

	out, _, code := w.cyrplan("status")
	if code != 0 || strings.Contains(out, "MOVED") || !strings.Contains(out, "store23") {
		t.Fatalf("status before failover: exit %d\n%s", code, out)
	}

	// Planned failover: the floating address follows, mail goes on.
	out, errOut, code := w.cyrplan("failover", "store23", "--auto-approve")
	if code != 0 {
		t.Fatalf("failover: exit %d\n%s%s", code, out, errOut)
	}
	for _, step := range []string{"stop slot608 on imap6", "drain slot608's replication log to slot308", "restart slot308 on imap3 as master", "start slot608 on imap6 as replica"} {
		if !strings.Contains(out, step) {
			t.Errorf("failover output lacks %q", step)
		}
	}
	eventually(t, 10*time.Second, "floating master address on imap3", func() error {
		who, err := floatingBanner(float)
		if err == nil && who != "slot308" {
			err = fmt.Errorf("answered by %s", who)
		}
		return err
	})
	if holder, err := w.fleet.Holder(float); err != nil || holder != "imap3" {
		t.Errorf("floating address held by %q (%v); want imap3", holder, err)
	}
	appendMessage(t, float+":143", "brong", "after failover")
	eventually(t, 20*time.Second, "second message on slot608, now the replica", func() error { return wantCount(t, w.addr("imap6", 8), "brong", 2) })

	// Running backwards is a warning (exit 1): fail it back soon.
	out, _, code = w.cyrplan("status")
	if code != 1 || !strings.Contains(out, "MOVED:\nstore23   slot608 => slot308") {
		t.Errorf("status after failover: exit %d\n%s", code, out)
	}

	// run -r goes to the replica, now slot608 on imap6.
	out, errOut, code = w.cyrplan("run", "-r", "store23", "--", "mbpath", "user/brong")
	if code != 0 || !strings.Contains(errOut, "slot608 on imap6") || !strings.Contains(out, "/mnt/data8/spool") {
		t.Errorf("run -r: exit %d\n%s%s", code, out, errOut)
	}
	// The seed's "cyr -r store23 dbtool show user.brong.": the replica's
	// mailboxes.db, found through {conf}, holds brong's mailbox.
	out, errOut, code = w.cyrplan("run", "-r", "store23", "--", "cyr_dbtool", "{conf}/mailboxes.db", "twoskip", "show")
	if code != 0 || !strings.Contains(errOut, "/mnt/meta8/conf/mailboxes.db") || !strings.Contains(out, "brong") {
		t.Errorf("run -r cyr_dbtool: exit %d\n%s%s", code, out, errOut)
	}
	// A tool that is a path, or not a Cyrus tool, is refused.
	if _, errOut, code := w.cyrplan("run", "store23", "--", "/bin/sh", "-c", "id"); code != 1 || !strings.Contains(errOut, "not a Cyrus tool name") {
		t.Errorf("run /bin/sh: exit %d %s", code, errOut)
	}
	if _, errOut, code := w.cyrplan("run", "store23", "--", "bash"); code != 1 || !strings.Contains(errOut, "bash is not a tool of Cyrus build") {
		t.Errorf("run bash: exit %d %s", code, errOut)
	}
	// The tool's exit status is run's.
	if _, _, code := w.cyrplan("run", "store23", "--", "mbpath", "user/nobody"); code == 0 {
		t.Error("mbpath of a missing mailbox exited 0 through run")
	}

	out, errOut, code = w.cyrplan("locate", "brong")
	if code != 0 || !strings.Contains(out, "brong is on store23: master slot308 on imap3; replicas slot608 on imap6") {
		t.Errorf("locate: exit %d\n%s%s", code, out, errOut)
	}

	// Failover back to the preferred master clears MOVED.
	if out, errOut, code := w.cyrplan("failover", "store23", "--auto-approve"); code != 0 {
		t.Fatalf("failover back: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = w.cyrplan("status")
	if strings.Contains(out, "MOVED") {
		t.Errorf("MOVED after moving back:\n%s", out)
	}
	eventually(t, 10*time.Second, "floating address back on imap6", func() error {
		who, err := floatingBanner(float)
		if err == nil && who != "slot608" {
			err = fmt.Errorf("answered by %s", who)
		}
		return err
	})

	// Forced failover with imap6 cut off.
	if err := w.fleet.Host("imap6").Cut(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = w.cyrplan("failover", "store23", "--connect-timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("failover without --force while imap6 is cut off: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = w.cyrplan("failover", "store23", "--force", "--auto-approve", "--connect-timeout", "2s")
	if code != 0 || !strings.Contains(out, "may be lost") {
		t.Fatalf("forced failover: exit %d\n%s%s", code, out, errOut)
	}
	w.fleet.FlushNeigh(float)
	eventually(t, 10*time.Second, "floating address on imap3 after the forced failover", func() error {
		who, err := floatingBanner(float)
		if err == nil && who != "slot308" {
			err = fmt.Errorf("answered by %s", who)
		}
		return err
	})
	out, _, code = w.cyrplan("status", "--connect-timeout", "2s")
	if code != 2 || !strings.Contains(out, "imap6") || !strings.Contains(out, "Not answering") {
		t.Errorf("status with imap6 cut off: exit %d\n%s", code, out)
	}

	// imap6 comes back from its power loss and starts its slots as boot
	// does. slot608 still records master, but the store's master address
	// answers from imap3: fenced, it does not start, and the address
	// keeps answering from slot308 alone.
	h6 := w.fleet.Host("imap6")
	if err := h6.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := h6.Uncut(); err != nil {
		t.Fatal(err)
	}
	if err := h6.Boot(); err != nil {
		t.Fatal(err)
	}
	if role, err := h6.Exec(ctxTimeout(t, 10*time.Second), "cat /var/lib/cyrplan/roles/slot608"); err != nil || strings.TrimSpace(role) != "master" {
		t.Fatalf("slot608's recorded role after the forced failover: %q, %v", role, err)
	}
	bootOut, err := h6.Exec(ctxTimeout(t, 60*time.Second), "/etc/init.d/cyrus-slot608 start")
	if err == nil || !strings.Contains(bootOut, "fenced") {
		t.Errorf("slot608 started as a second master at boot: %v\n%s", err, bootOut)
	}
	if out, err := h6.Exec(ctxTimeout(t, 60*time.Second), "/etc/init.d/cyrus-slot602 start"); err != nil {
		t.Errorf("imap6's other slot at boot: %v\n%s", err, out)
	}
	if who, err := floatingBanner(float); err != nil || who != "slot308" {
		t.Errorf("the floating master address after imap6's boot: %q, %v; want slot308 only", who, err)
	}
	if ip, _ := h6.Exec(ctxTimeout(t, 10*time.Second), "ip -o addr show"); strings.Contains(ip, " "+float+"/") {
		t.Errorf("imap6 holds the floating master address after its boot:\n%s", ip)
	}
	// The one command brings it back as replica.
	out, errOut, code = w.cyrplan("failover", "store23", "--to", "slot308", "--auto-approve")
	if code != 0 || !strings.Contains(out, "start slot608 on imap6 as replica") {
		t.Fatalf("bringing slot608 back as replica: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = w.cyrplan("status", "--format", "json")
	if code != 1 || !strings.Contains(out, `"currentMasters": [
        "slot308"
      ]`) {
		t.Errorf("status after slot608 came back as replica: exit %d\n%s", code, out)
	}
}

func wantCount(t *testing.T, addr, user string, want int) error {
	n, err := count(t, addr, user)
	if err == nil && n != want {
		err = fmt.Errorf("%d messages, want %d", n, want)
	}
	return err
}
