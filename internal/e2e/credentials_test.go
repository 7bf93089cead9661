package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/state"
)

// TestReplicationCredentials: from empty hosts, with logins checked
// against the slots' sasldb, nothing done by hand: apply provisions the
// replication user on every slot of a store, so the first message
// appended on the master reaches the replica, and after a failover the
// other way round. The times are logged: the first-message time and the
// gap replication takes after a failover.
func TestReplicationCredentials(t *testing.T) {
	w := newWorld(t)
	w.params.RealAuth = true
	w.writeLayout()
	if out, errOut, code := w.cyrplan("apply", "--auto-approve"); code != 0 || !strings.Contains(out, "provision ok") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code := w.cyrplan("plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply: exit %d (the credentials are provisioned again?)\n%s", code, out)
	}
	checkKeyed(t, w, "imap6", "slot608")
	float := w.fleet.FloatingAddr(23)
	w.fleet.FlushNeigh(float)
	// The replication user is an admin, with the password of the secret.
	admin := dialIMAP(t, float+":143")
	if _, err := admin.try("LOGIN repluser wrong-password"); err == nil {
		t.Fatal("a wrong password logs in: logins are not checked")
	}
	admin = dialIMAP(t, float+":143")
	admin.do(t, "LOGIN repluser s3cr3t-repl-pw")
	admin.do(t, "CREATE user/brong")
	admin.do(t, "SETACL user/brong repluser lrswipkxtecdan") // an admin may not insert by default

	start := time.Now()
	appendAs(t, float+":143", "first message")
	eventually(t, 60*time.Second, "the first message on the replica slot308", func() error {
		return wantCountAs(t, w.addr("imap3", 8), 1)
	})
	t.Logf("first message: on the replica %v after it was appended", time.Since(start).Round(time.Millisecond))

	if out, errOut, code := w.cyrplan("failover", "store23", "--auto-approve"); code != 0 {
		t.Fatalf("failover: exit %d\n%s%s", code, out, errOut)
	}
	w.fleet.FlushNeigh(float)
	eventually(t, 20*time.Second, "the floating master address answers", func() error {
		_, err := floatingBanner(float)
		return err
	})
	start = time.Now()
	appendAs(t, float+":143", "after the failover")
	eventually(t, 60*time.Second, "the message after the failover on slot608", func() error {
		return wantCountAs(t, w.addr("imap6", 8), 2)
	})
	t.Logf("after the failover: a message appended on slot308 is on slot608 %v later", time.Since(start).Round(time.Millisecond))
}

// appendAs appends a message to user/brong, logged in as the replication
// user (the only user with a password here).
func appendAs(t *testing.T, addr, subject string) {
	t.Helper()
	m := dialIMAP(t, addr)
	m.do(t, "LOGIN repluser s3cr3t-repl-pw")
	msg := "Subject: " + subject + "\r\n\r\nhello\r\n"
	m.do(t, "APPEND user/brong {%d+}\r\n%s", len(msg), msg)
}

// wantCountAs checks the number of messages in user/brong at addr.
func wantCountAs(t *testing.T, addr string, want int) error {
	m, err := dialIMAPErr(addr)
	if err != nil {
		return err
	}
	defer m.c.Close()
	if _, err := m.try("LOGIN repluser s3cr3t-repl-pw"); err != nil {
		return err
	}
	lines, err := m.try("EXAMINE user/brong")
	if err != nil {
		return err
	}
	for _, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l, "* %d EXISTS", &n); err == nil {
			if n != want {
				return fmt.Errorf("%d messages, want %d", n, want)
			}
			return nil
		}
	}
	return fmt.Errorf("no EXISTS in %q", lines)
}

// checkKeyed: what the manifest of host records of slot's imapd.conf
// and credentials are keyed hashes made with the host's own key, which
// apply made there for root alone; nothing in it is a hash anyone could
// test a guessed password against.
func checkKeyed(t *testing.T, w *world, host, slot string) {
	t.Helper()
	h := w.fleet.Host(host)
	data, err := os.ReadFile(h.Path(hostpath.HashKey))
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.TrimSuffix(data, []byte("\n"))
	if fi, err := os.Stat(h.Path(hostpath.HashKey)); err != nil || fi.Mode().Perm() != 0o600 || !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(key) {
		t.Errorf("%s: mode %v, %d bytes; want 0600 and 64 hex digits", hostpath.HashKey, fi.Mode(), len(data))
	}
	keyed := func(parts ...string) string {
		sum := sha256.Sum256(append(bytes.Clone(key), strings.Join(parts, "\x00")...))
		return hex.EncodeToString(sum[:])
	}
	raw, err := os.ReadFile(h.Path(hostpath.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	m, err := state.DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	conf := hostpath.Named(slot).IMAPDConf
	content, err := os.ReadFile(h.Path(conf))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Files[conf].Keyed, keyed("file", string(content)); got != want {
		t.Errorf("manifest: keyed hash of %s %q, want %q", conf, got, want)
	}
	if got, want := m.Credentials[slot], keyed("value", state.CredentialsLabel("repluser"), "s3cr3t-repl-pw"); got != want {
		t.Errorf("manifest: credentials of %s %q, want %q", slot, got, want)
	}
	if bytes.Contains(raw, []byte(state.Hash(content))) || bytes.Contains(raw, []byte("salt")) {
		t.Errorf("the manifest holds an unkeyed hash of %s, or a salt:\n%s", conf, raw)
	}
}
