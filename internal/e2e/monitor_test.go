package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/report"
)

// TestReplicationMonitoring: a message that cannot replicate (the
// replica's sync_server is stopped, SIGSTOP) shows in verify (exactly
// its mailbox differs), in status (a backlog, a canary that did not
// arrive, the last verify) and in the exit codes; once the replica is
// back, all of it clears.
func TestReplicationMonitoring(t *testing.T) {
	o := newOpWorld(t)
	w := o.w
	o.send("replicated")
	eventually(t, 30*time.Second, "the first message on slot308", func() error { return wantMessages(t, w.addr("imap3", 8), "brong", o.sent) })

	// brong's Sent folder: user/brong/Sent to the admin, "Sent" to brong
	// (Cyrus's altnamespace), where verify compares it as brong.
	m := dialIMAP(t, o.float+":143")
	m.do(t, "LOGIN brong x")
	m.do(t, "CREATE Sent")
	m.do(t, "LOGOUT")
	var out string
	var code int
	eventually(t, 30*time.Second, "verify finds the stores identical", func() error {
		out, _, code = w.cyrplan("verify", "store23", "store24")
		if code != 0 || !strings.Contains(out, "store23: slot608 -> slot308: 2 mailboxes, identical") {
			return fmt.Errorf("verify: exit %d\n%s", code, out)
		}
		return nil
	})
	out, _, code = w.cyrplan("status", "--canary", "--canary-timeout", "10s")
	if code != 0 || strings.Contains(out, "failed") {
		t.Fatalf("status --canary of a replicating fleet: exit %d\n%s", code, out)
	}

	// Stop slot308's sync_server: slot608's sync_client hangs on it.
	h3 := w.fleet.Host("imap3")
	// The bracket keeps the pattern from matching the shell that runs pkill.
	const syncServer = "[s]ync_server -C /etc/cyrus/slot308/imapd.conf"
	if out, err := h3.Exec(ctxTimeout(t, 10*time.Second), "pkill -STOP -f '"+syncServer+"'"); err != nil {
		t.Fatalf("stopping slot308's sync_server: %v\n%s", err, out)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if out, err := h3.Exec(ctxTimeout(t, 10*time.Second), "pkill -CONT -f '"+syncServer+"'"); err != nil {
				t.Errorf("resuming slot308's sync_server: %v\n%s", err, out)
			}
		}
	}
	defer resume()
	m = dialIMAP(t, o.float+":143")
	m.do(t, "LOGIN brong x")
	msg := "From: test@example.com\r\nMessage-Id: <blocked@cyrplan.test>\r\nSubject: blocked\r\n\r\nhello\r\n"
	m.do(t, "APPEND Sent {%d+}\r\n%s", len(msg), msg)
	m.do(t, "LOGOUT")

	// verify names exactly that mailbox.
	var res []report.Verify
	eventually(t, 20*time.Second, "verify sees the blocked message", func() error {
		out, _, code = w.cyrplan("verify", "store23", "--json")
		res = nil
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return err
		}
		if code != 2 {
			return fmt.Errorf("verify: exit %d\n%s", code, out)
		}
		return nil
	})
	if len(res) != 1 || len(res[0].Replicas) != 1 || len(res[0].Replicas[0].Divergent) != 1 {
		t.Fatalf("verify with slot308's sync_server stopped: want one divergent mailbox:\n%s", out)
	}
	if d := res[0].Replicas[0].Divergent[0]; d.Name != "user/brong/Sent" || d.Missing != 1 || d.Extra != 0 {
		t.Errorf("the divergent mailbox: %+v, want user/brong/Sent with 1 message missing", d)
	}
	out, _, code = w.cyrplan("verify", "store23")
	if code != 2 || !strings.Contains(out, "  user/brong/Sent: ") || !strings.Contains(out, "CRITICAL: 1 of 1 store differs: store23") {
		t.Errorf("verify's text: exit %d\n%s", code, out)
	}

	// status: the backlog, the canary that did not arrive, the verify.
	out, _, code = w.cyrplan("status", "--canary", "--canary-timeout", "5s", "--format", "json")
	var st report.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --format json: %v\n%s", err, out)
	}
	var s23 *report.Store
	for i := range st.Stores {
		if st.Stores[i].Store == "store23" {
			s23 = &st.Stores[i]
		}
	}
	if code != 2 || s23 == nil || len(s23.Replication) != 1 {
		t.Fatalf("status with slot308's sync_server stopped: exit %d\n%s", code, out)
	}
	r := s23.Replication[0]
	if r.Backlog == 0 || r.SyncClient == nil || !*r.SyncClient || r.Canary == nil || r.Canary.Error == "" {
		t.Errorf("store23's replication with slot308's sync_server stopped: %+v (canary %+v)", r, r.Canary)
	}
	if s23.Verify == nil || s23.Verify.Divergent() != 1 {
		t.Errorf("status's last verify of store23: %+v", s23.Verify)
	}
	out, _, _ = w.cyrplan("status")
	for _, want := range []string{"store23 slot308: the last canary", "did not arrive", "the last verify", "found 1 mailbox differing"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// The replica back: replication catches up, and all clears.
	resume()
	eventually(t, 60*time.Second, "verify finds store23 identical", func() error {
		if out, _, code := w.cyrplan("verify", "store23"); code != 0 {
			return fmt.Errorf("verify: exit %d\n%s", code, out)
		}
		return nil
	})
	eventually(t, 60*time.Second, "status is OK again", func() error {
		out, _, code := w.cyrplan("status", "--canary", "--canary-timeout", "10s")
		if code != 0 {
			return fmt.Errorf("status: exit %d\n%s", code, out)
		}
		return nil
	})
	out, _, _ = w.cyrplan("status", "--format", "openmetrics")
	if !strings.Contains(out, `cyrplan_replication_backlog_entries{master="slot608",replica="slot308",store="store23"} 0.0`) || !strings.HasSuffix(out, "# EOF\n") {
		t.Errorf("status --format openmetrics after the replica came back:\n%s", out)
	}
}
