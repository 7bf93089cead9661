package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestSlotMove: store23's replica moves from slot308 (imap3) to slot508
// (imap5), created before the old one is destroyed: the new slot holds
// every message, new mail replicates to it, the old slot is stopped and
// its config gone, and its mail data is untouched.
func TestSlotMove(t *testing.T) {
	w := newWorld(t)
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	float := w.fleet.FloatingAddr(23)
	w.fleet.FlushNeigh(float)
	admin := dialIMAP(t, float+":143")
	admin.do(t, "LOGIN cyrus x")
	admin.do(t, "CREATE user/brong")
	var sent []string
	for _, s := range []string{"one", "two", "three"} {
		sent = append(sent, appendMessage(t, float+":143", "brong", s))
	}
	eventually(t, 30*time.Second, "the messages on slot308", func() error { return wantMessages(t, w.addr("imap3", 8), "brong", sent) })
	before, err := w.fleet.Host("imap3").Exec(ctxTimeout(t, 10*time.Second), "find /mnt/data8/spool -type f | sort")
	if err != nil || !strings.Contains(before, "/mnt/data8/spool") {
		t.Fatalf("slot308's spool before the move: %v\n%s", err, before)
	}

	w.params.Replica23 = "slot508"
	w.writeLayout()
	out, errOut, code := w.cyrplan("move", "store23", "--from", "slot308", "--to", "slot508")
	if code != 0 || !strings.Contains(out, "copy every user of slot608 to slot508") {
		t.Fatalf("move plan: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = w.cyrplan("move", "store23", "--from", "slot308", "--to", "slot508", "--auto-approve")
	if code != 0 || !strings.Contains(out, "Operation complete") || !strings.Contains(out, "reclaim") {
		t.Fatalf("move: exit %d\n%s%s", code, out, errOut)
	}
	if err := wantMessages(t, w.addr("imap5", 8), "brong", sent); err != nil {
		t.Errorf("slot508 right after the move: %v", err)
	}
	w.fleet.FlushNeigh(float)
	sent = append(sent, appendMessage(t, float+":143", "brong", "after the move"))
	eventually(t, 30*time.Second, "the new message on slot508", func() error { return wantMessages(t, w.addr("imap5", 8), "brong", sent) })

	h3 := w.fleet.Host("imap3")
	if out, err := h3.Exec(ctxTimeout(t, 10*time.Second), "test ! -e /etc/cyrus/slot308/imapd.conf && test ! -e /etc/init.d/cyrus-slot308 && ! pgrep -af -- '-p /run/cyrus-slot30[8].pid'"); err != nil || out != "" {
		t.Errorf("slot308 after the move: config or master left (%v)\n%s", err, out)
	}
	after, err := h3.Exec(ctxTimeout(t, 10*time.Second), "find /mnt/data8/spool -type f | sort")
	if err != nil || after != before {
		t.Errorf("slot308's mail data changed by the move (%v):\nbefore\n%s\nafter\n%s", err, before, after)
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("the config plan after the move: exit %d\n%s", code, out)
	}
}
