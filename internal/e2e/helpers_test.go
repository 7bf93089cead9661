package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/cyrplan/cyrplan/internal/cli"
	"github.com/cyrplan/cyrplan/internal/testhosts"
)

const cyrusMaster = "/usr/lib/cyrus/bin/master"

// requireCyrus skips (or, under CYRPLAN_E2E=1, fails) without Cyrus.
func requireCyrus(t *testing.T) {
	t.Helper()
	testhosts.Require(t)
	if _, err := os.Stat(cyrusMaster); err != nil {
		if os.Getenv("CYRPLAN_E2E") == "1" {
			t.Fatalf("CYRPLAN_E2E=1 but Cyrus is not installed (%v): apt-get install cyrus-imapd cyrus-replication", err)
		}
		t.Skipf("Cyrus is not installed (apt-get install cyrus-imapd cyrus-replication); set CYRPLAN_E2E=1 to require it")
	}
}

// world is a fleet of simulated hosts and a layout for them.
type world struct {
	t      *testing.T
	fleet  *testhosts.Fleet
	layout string // layout directory
	params layoutParams
}

type layoutParams struct {
	Hosts     []hostParam
	Float     func(int) string
	Pin23     bool   // store23 runs /usr/cyrusnew
	Quota     string // store23's quota_db
	Extras    string // more CUE
	Replica23 string // store23's replica; default slot308
	Pin69     bool   // store69 runs /usr/cyrusnew
	// RealAuth: logins are checked against each slot's sasldb (where apply
	// provisions the replication user) instead of accepting any password.
	RealAuth bool
}

type hostParam struct {
	Name    string
	Number  int
	Address string
}

const layoutTmpl = `package layout

domain: "test"
cyrus: {
	"3.6.1": prefix: "/usr/lib/cyrus"
	"3.6.1-new": prefix: "/usr/cyrusnew"
}
defaultCyrus: "3.6.1"
hosts: {
{{- range .Hosts}}
	{{.Name}}: {number: {{.Number}}, address: "{{.Address}}"}
{{- end}}
}
stores: {
	store23: {
		master: "slot608", replicas: ["{{or .Replica23 "slot308"}}"]
		ip: {master: "{{call .Float 23}}", replica: "{{call .Float 123}}"}
		{{- if .Pin23}}
		cyrus: "3.6.1-new"
		{{- end}}
		imapd: quota_db: "{{.Quota}}"
	}
	store24: {master: "slot908", replicas: ["slot503"], ip: master: "{{call .Float 24}}"}
	store35: {master: "slot301", replicas: ["slot501"], ip: master: "{{call .Float 35}}"}
	store69: {master: "slot602", replicas: ["slot902"], ip: master: "{{call .Float 69}}"{{if .Pin69}}, cyrus: "3.6.1-new"{{end}}}
}
imapd: {
	admins:               "cyrus"
	allowplaintext:       true
	{{- if .RealAuth}}
	sasl_pwcheck_method:  "auxprop"
	sasl_auxprop_plugin:  "sasldb"
	{{- else}}
	sasl_pwcheck_method:  "alwaystrue" // tests only: any password
	{{- end}}
	sasl_mech_list:       "PLAIN" // alwaystrue verifies plaintext only
	failedloginpause:     0
	sync_repeat_interval: 0
}
{{.Extras}}
`

// newWorld builds hosts imap3, imap5, imap6 and imap9 and a layout of
// four stores across them.
func newWorld(t *testing.T) *world {
	requireCyrus(t)
	fl := testhosts.Up(t, "imap3", "imap5", "imap6", "imap9")
	w := &world{t: t, fleet: fl, layout: t.TempDir(), params: layoutParams{Float: fl.FloatingAddr, Quota: "twoskip"}}
	for _, n := range []string{"imap3", "imap5", "imap6", "imap9"} {
		num, _ := strconv.Atoi(strings.TrimPrefix(n, "imap"))
		w.params.Hosts = append(w.params.Hosts, hostParam{Name: n, Number: num, Address: fl.Host(n).Addr})
	}
	w.writeLayout()
	t.Setenv("CYRPLAN_SECRET_REPLICATION", "s3cr3t-repl-pw")
	return w
}

func (w *world) writeLayout() {
	w.t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("l").Parse(layoutTmpl)).Execute(&b, w.params); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.layout, "fleet.cue"), b.Bytes(), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// cyrplan runs the CLI in-process against the world's hosts.
func (w *world) cyrplan(args ...string) (string, string, int) {
	w.t.Helper()
	// Flags go before a "--" that ends them (run's tool arguments).
	flags := []string{"--layout", w.layout}
	if args[0] != "validate" && args[0] != "render" {
		flags = append(flags, "--known-hosts", w.fleet.KnownHosts, "--identity", w.fleet.Identity)
	}
	at := len(args)
	for i, a := range args {
		if a == "--" {
			at = i
			break
		}
	}
	args = append(append(append([]string{}, args[:at]...), flags...), args[at:]...)
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	w.t.Logf("cyrplan %s: exit %d\n%s%s", strings.Join(args[:1], " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// addr is where a slot's IMAP service listens.
func (w *world) addr(host string, partition int) string {
	return fmt.Sprintf("%s:%d", w.fleet.Host(host).Addr, 14300+partition)
}

// masterPID reads a slot's master pid on its host.
func (w *world) masterPID(host, slot string) int {
	w.t.Helper()
	data, err := os.ReadFile(w.fleet.Host(host).Path("/run/cyrus-" + slot + ".pid"))
	if err != nil {
		w.t.Fatalf("%s %s pidfile: %v", host, slot, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		w.t.Fatal(err)
	}
	return pid
}

// imap is a minimal IMAP client: enough to log in, create, append and
// count messages.
type imap struct {
	c        net.Conn
	r        *bufio.Reader
	greeting string
	tag      int
}

func dialIMAPErr(addr string) (*imap, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	m := &imap{c: c, r: bufio.NewReader(c)}
	line, err := m.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "* OK") {
		c.Close()
		return nil, fmt.Errorf("imap %s greeting %q: %v", addr, line, err)
	}
	m.greeting = strings.TrimSpace(line)
	return m, nil
}

func dialIMAP(t *testing.T, addr string) *imap {
	t.Helper()
	m, err := dialIMAPErr(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.c.Close() })
	return m
}

// do sends a command and returns the untagged lines; it fails unless the
// tagged reply is OK.
func (m *imap) do(t *testing.T, format string, args ...any) []string {
	t.Helper()
	lines, err := m.try(format, args...)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func (m *imap) try(format string, args ...any) ([]string, error) {
	m.tag++
	tag := fmt.Sprintf("t%d", m.tag)
	cmd := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintf(m.c, "%s %s\r\n", tag, cmd); err != nil {
		return nil, err
	}
	var untagged []string
	for {
		line, err := m.r.ReadString('\n')
		if err != nil {
			return untagged, fmt.Errorf("imap %q: %v", cmd, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				return untagged, fmt.Errorf("imap %q: %s", cmd, line)
			}
			return untagged, nil
		}
		untagged = append(untagged, line)
	}
}

// appendMessage logs in as user on addr, appends one message and
// returns its Message-Id.
func appendMessage(t *testing.T, addr, user, subject string) string {
	t.Helper()
	m := dialIMAP(t, addr)
	m.do(t, "LOGIN %s x", user)
	id := newMessageID()
	msg := fmt.Sprintf("From: test@example.com\r\nTo: %s@example.com\r\nMessage-Id: %s\r\nSubject: %s\r\n\r\nhello\r\n", user, id, subject)
	m.do(t, "APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	m.do(t, "LOGOUT")
	return id
}

var messageSeq atomic.Int64

func newMessageID() string {
	return fmt.Sprintf("<e2e-%d-%d@cyrplan.test>", time.Now().UnixNano(), messageSeq.Add(1))
}

// wantMessages checks that user's INBOX on addr holds exactly the
// messages of ids, by Message-Id.
func wantMessages(t *testing.T, addr, user string, ids []string) error {
	m, err := dialIMAPErr(addr)
	if err != nil {
		return err
	}
	defer m.c.Close()
	if _, err := m.try("LOGIN %s x", user); err != nil {
		return err
	}
	if _, err := m.try("EXAMINE INBOX"); err != nil {
		return err
	}
	lines, err := m.try("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	if err != nil && len(ids) > 0 {
		return err
	}
	have := map[string]bool{}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "Message-Id: "); ok {
			have[strings.TrimSpace(v)] = true
		}
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 || len(have) != len(ids) {
		return fmt.Errorf("%d messages, want %d; missing %v", len(have), len(ids), missing)
	}
	return nil
}

// count returns how many messages user's INBOX holds on addr.
func count(t *testing.T, addr, user string) (int, error) {
	m, err := dialIMAPErr(addr)
	if err != nil {
		return 0, err
	}
	defer m.c.Close()
	if _, err := m.try("LOGIN %s x", user); err != nil {
		return 0, err
	}
	lines, err := m.try("SELECT INBOX")
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

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
