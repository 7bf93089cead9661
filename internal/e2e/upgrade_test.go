package e2e

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRollingUpgrade: store23 moves from Debian's build to a copy under
// /usr/cyrusnew through replication while messages are appended through
// its floating master address: both slots end on the new build, no
// message is lost, the config plan is empty afterwards, and the longest
// time the floating master address refused connections is reported.
func TestRollingUpgrade(t *testing.T) {
	w := newWorld(t)
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	for _, h := range []string{"imap6", "imap3"} {
		if _, err := w.fleet.Host(h).Exec(ctxTimeout(t, time.Minute), "cp -a /usr/lib/cyrus/. /usr/cyrusnew/"); err != nil {
			t.Fatal(err)
		}
	}
	float := w.fleet.FloatingAddr(23)
	w.fleet.FlushNeigh(float)
	admin := dialIMAP(t, float+":143")
	admin.do(t, "LOGIN cyrus x")
	admin.do(t, "CREATE user/brong")
	sent := []string{appendMessage(t, float+":143", "brong", "before the upgrade")}

	w.params.Pin23 = true
	w.writeLayout()
	out, errOut, code := w.cyrplan("upgrade", "store23")
	if code != 0 || !strings.Contains(out, "upgrade replica slot308 on imap3 to 3.6.1-new") || !strings.Contains(out, "know the same imapd.conf options") {
		t.Fatalf("upgrade plan: exit %d\n%s%s", code, out, errOut)
	}

	// While it runs: probe the floating master address, and append.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var longest, current time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		var downSince time.Time
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			c, err := net.DialTimeout("tcp", float+":143", 200*time.Millisecond)
			mu.Lock()
			if err != nil {
				if downSince.IsZero() {
					downSince = time.Now()
				}
				current = time.Since(downSince)
				longest = max(longest, current)
			} else {
				c.Close()
				downSince, current = time.Time{}, 0
			}
			mu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, errOut, code = w.cyrplan("upgrade", "store23", "--auto-approve")
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(700 * time.Millisecond):
			w.fleet.FlushNeigh(float)
			if id, err := tryAppend(float+":143", "brong", "during the upgrade"); err == nil {
				sent = append(sent, id)
			}
		}
	}
	close(stop)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "Operation complete: upgrade store23") {
		t.Fatalf("upgrade: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("the floating master address refused connections for %v at the longest; %d messages appended during the upgrade", longest.Round(time.Millisecond), len(sent)-1)

	for _, s := range []struct{ host, slot string }{{"imap6", "slot608"}, {"imap3", "slot308"}} {
		exe, err := w.fleet.Host(s.host).Exec(ctxTimeout(t, 10*time.Second), "readlink /proc/$(cat /run/cyrus-"+s.slot+".pid)/exe")
		if exe = strings.TrimSpace(exe); err != nil || exe != "/usr/cyrusnew/bin/master" {
			t.Errorf("%s master runs %q (%v); want /usr/cyrusnew/bin/master", s.slot, exe, err)
		}
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("the config plan after the upgrade: exit %d\n%s", code, out)
	}
	if out, _, _ := w.cyrplan("status"); strings.Contains(out, "MOVED") {
		t.Errorf("store23 runs backwards after the upgrade:\n%s", out)
	}
	w.fleet.FlushNeigh(float)
	sent = append(sent, appendMessage(t, float+":143", "brong", "after the upgrade"))
	for _, s := range []struct {
		host string
		part int
	}{{"imap6", 8}, {"imap3", 8}} {
		eventually(t, 30*time.Second, "every message on "+s.host, func() error { return wantMessages(t, w.addr(s.host, s.part), "brong", sent) })
	}
}

// tryAppend appends a message as user and returns its Message-Id, or
// the error instead of failing the test: during an upgrade the master may
// not answer.
func tryAppend(addr, user, subject string) (string, error) {
	m, err := dialIMAPErr(addr)
	if err != nil {
		return "", err
	}
	defer m.c.Close()
	if _, err := m.try("LOGIN %s x", user); err != nil {
		return "", err
	}
	id := newMessageID()
	msg := "Message-Id: " + id + "\r\nSubject: " + subject + "\r\n\r\nhello\r\n"
	_, err = m.try("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	return id, err
}

// TestRollingUpgradeWaves: upgrade --all --waves 2 moves both pinned
// stores (whose masters share imap6) side by side: every slot ends on
// the new build, the stores are back on their preferred masters, and the
// config plan is empty.
func TestRollingUpgradeWaves(t *testing.T) {
	w := newWorld(t)
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	for _, h := range []string{"imap6", "imap3", "imap9"} {
		if _, err := w.fleet.Host(h).Exec(ctxTimeout(t, time.Minute), "cp -a /usr/lib/cyrus/. /usr/cyrusnew/"); err != nil {
			t.Fatal(err)
		}
	}
	w.params.Pin23, w.params.Pin69 = true, true
	w.writeLayout()
	out, errOut, code := w.cyrplan("upgrade", "--all", "--waves", "2", "--auto-approve")
	if code != 0 || !strings.Contains(out, "wave 1: upgrade replica slot308") || !strings.Contains(out, "wave 1: upgrade replica slot902") {
		t.Fatalf("upgrade --all --waves 2: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []struct{ host, slot string }{{"imap6", "slot608"}, {"imap3", "slot308"}, {"imap6", "slot602"}, {"imap9", "slot902"}} {
		exe, err := w.fleet.Host(s.host).Exec(ctxTimeout(t, 10*time.Second), "readlink /proc/$(cat /run/cyrus-"+s.slot+".pid)/exe")
		if exe = strings.TrimSpace(exe); err != nil || exe != "/usr/cyrusnew/bin/master" {
			t.Errorf("%s master runs %q (%v); want /usr/cyrusnew/bin/master", s.slot, exe, err)
		}
	}
	if out, _, code := w.cyrplan("status"); code != 0 || strings.Contains(out, "MOVED") {
		t.Errorf("status after the upgrade: exit %d\n%s", code, out)
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("the config plan after the upgrade: exit %d\n%s", code, out)
	}
}
