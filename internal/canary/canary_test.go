package canary

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const (
	admin = "cyrus"
	pw    = "secret"
)

func init() { minPoll, maxPoll = 5*time.Millisecond, 10*time.Millisecond }

// server is an in-memory IMAP server holding one user. A master server
// "replicates" to its replicas: every mailbox it creates is created on
// them, and every message appended to it is appended to each, after the
// replica's delay, unless the replica is blocked.
type server struct {
	t        *testing.T
	addr     string
	user     *imapmemserver.User
	mu       sync.Mutex
	replicas []*server
	delay    time.Duration
	blocked  bool
}

func newServer(t *testing.T, caps ...imap.Cap) *server {
	t.Helper()
	s := &server{t: t, user: imapmemserver.NewUser(admin, pw)}
	set := imap.CapSet{imap.CapIMAP4rev1: {}}
	for _, c := range caps {
		set[c] = struct{}{}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &fakeSession{srv: s}, nil, nil
		},
		Caps:         set,
		InsecureAuth: true,
		Logger:       discard{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type discard struct{}

func (discard) Printf(string, ...any) {}

func (s *server) setBlocked(b bool) {
	s.mu.Lock()
	s.blocked = b
	s.mu.Unlock()
}

// fakeSession is a memserver user session whose Create and Append replicate.
type fakeSession struct {
	*imapmemserver.UserSession
	srv *server
}

func (s *fakeSession) Login(user, pass string) error {
	if err := s.srv.user.Login(user, pass); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.srv.user)
	return nil
}

func (s *fakeSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

func (s *fakeSession) Create(name string, options *imap.CreateOptions) error {
	if err := s.UserSession.Create(name, options); err != nil {
		return err
	}
	for _, r := range s.srv.replicas {
		r.user.Create(name, options)
	}
	return nil
}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

func (s *fakeSession) Append(mbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	data, err := s.UserSession.Append(mbox, literal{bytes.NewReader(body)}, options)
	if err != nil {
		return nil, err
	}
	for _, rep := range s.srv.replicas {
		rep.mu.Lock()
		blocked, delay := rep.blocked, rep.delay
		rep.mu.Unlock()
		if !blocked {
			time.AfterFunc(delay, func() { rep.user.Append(mbox, literal{bytes.NewReader(body)}, options) })
		}
	}
	return data, nil
}

// store is a master with replicas, each delayed by its delay.
func store(t *testing.T, delays ...time.Duration) (*server, []*server) {
	m := newServer(t, imap.CapUIDPlus)
	for _, d := range delays {
		r := newServer(t, imap.CapUIDPlus)
		r.delay = d
		m.replicas = append(m.replicas, r)
	}
	return m, m.replicas
}

func addrs(rs []*server) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.addr)
	}
	return out
}

var cfg = Config{User: admin, Password: pw, Timeout: 2 * time.Second}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// canaries lists the Message-Ids in mbox on s, in UID order.
func canaries(t *testing.T, s *server, mbox string) []string {
	t.Helper()
	cl, err := imapclient.DialInsecure(s.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Login(admin, pw).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := cl.Select(mbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := cl.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true, UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Envelope.MessageID)
	}
	return ids
}

func TestCheck(t *testing.T) {
	m, reps := store(t, 0, 150*time.Millisecond)
	got, err := Check(ctx(t), m.addr, addrs(reps), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("arrivals %v; want both replicas", got)
	}
	if d := got[reps[1].addr]; d < 150*time.Millisecond {
		t.Errorf("slow replica's arrival %s; want 150ms or more", d)
	}
	if d := got[reps[0].addr]; d > got[reps[1].addr] {
		t.Errorf("immediate replica's arrival %s is after the slow one's %s", d, got[reps[1].addr])
	}
	// The default mailbox, created on the master (and so on the replicas).
	ids := canaries(t, m, "user/cyrplan-canary")
	if len(ids) != 1 || !regexp.MustCompile(`^cyrplan-canary-[0-9a-f]{24}@cyrplan$`).MatchString(ids[0]) {
		t.Errorf("master's canaries %q", ids)
	}
	if r := canaries(t, reps[1], "user/cyrplan-canary"); len(r) != 1 || r[0] != ids[0] {
		t.Errorf("replica's canaries %q; want %q", r, ids)
	}
	// Again: the mailbox exists now (CREATE answers ALREADYEXISTS).
	if _, err := Check(ctx(t), m.addr, addrs(reps), cfg); err != nil {
		t.Fatalf("second check: %v", err)
	}
	if ids := canaries(t, m, "user/cyrplan-canary"); len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("canaries after two checks: %q", ids)
	}
}

func TestCheckNoReplicas(t *testing.T) {
	m, _ := store(t)
	got, err := Check(ctx(t), m.addr, nil, cfg)
	if err != nil || len(got) != 0 {
		t.Fatalf("Check without replicas: %v, %v", got, err)
	}
}

func TestCheckBlockedReplica(t *testing.T) {
	m, reps := store(t, 0, 0)
	reps[1].setBlocked(true)
	c := cfg
	c.Timeout = 300 * time.Millisecond
	c.Mailbox = "user/monitor"
	start := time.Now()
	got, err := Check(ctx(t), m.addr, addrs(reps), c)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("Check passed with replication to %s blocked: %v", reps[1].addr, got)
	}
	if _, ok := got[reps[0].addr]; !ok || len(got) != 1 {
		t.Errorf("arrivals %v; want only %s", got, reps[0].addr)
	}
	if took < 300*time.Millisecond {
		t.Errorf("Check gave up after %s, before its 300ms timeout", took)
	}
	var na *NotArrivedError
	if !errors.As(err, &na) || na.Replica != reps[1].addr || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %#v (%v); want a NotArrivedError for %s", err, err, reps[1].addr)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"did not reach replica " + reps[1].addr, "(mailbox user/monitor)", "within ", "of being sent", "last: not there", "<cyrplan-canary-"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if na.Looks < 1 {
		t.Errorf("%d looks in 300ms", na.Looks)
	}
	// Nothing was pruned: a failed check leaves the evidence.
	reps[1].setBlocked(false)
	if ids := canaries(t, m, "user/monitor"); len(ids) != 1 {
		t.Errorf("master's canaries %q", ids)
	}
}

func TestWaitReplicaDown(t *testing.T) {
	m, _ := store(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	c := cfg
	// Long enough for a look to end on its own under load: the last
	// look's error is the one reported, and a look cut short by the
	// deadline says nothing of the replica.
	c.Timeout = 2 * time.Second
	k, err := Send(ctx(t), m.addr, c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Wait(ctx(t), down, c, k)
	var na *NotArrivedError
	// The port was closed; under load another test may have been given
	// it since, and a listener that does not accept times the dial out:
	// either way the replica never answered.
	unanswered := strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "i/o timeout")
	if !errors.As(err, &na) || na.Looks != 0 || !unanswered || !strings.Contains(err.Error(), down) {
		t.Errorf("Wait on a closed port: %v", err)
	}
}

// A replica that has not got the mailbox yet (the first canary) is
// "not there yet", not an error: Wait goes on looking.
func TestWaitMailboxLate(t *testing.T) {
	r := newServer(t)
	k := Canary{MessageID: "<cyrplan-canary-1@cyrplan>", Mailbox: "user/cyrplan-canary", SentAt: time.Now()}
	time.AfterFunc(100*time.Millisecond, func() {
		r.user.Create(k.Mailbox, nil)
		msg := compose(k.MessageID, k.SentAt)
		r.user.Append(k.Mailbox, literal{bytes.NewReader(msg)}, &imap.AppendOptions{})
	})
	d, err := Wait(ctx(t), r.addr, cfg, k)
	if err != nil || d < 100*time.Millisecond {
		t.Fatalf("Wait: %s, %v", d, err)
	}
}

func TestWaitCanceled(t *testing.T) {
	r := newServer(t)
	c, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Wait(c, r.addr, cfg, Canary{MessageID: "<cyrplan-canary-x@cyrplan>", Mailbox: "m", SentAt: time.Now()})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped: context canceled") ||
		!strings.Contains(err.Error(), "EXAMINE m") {
		t.Errorf("Wait canceled: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	m := newServer(t)
	if _, err := Send(ctx(t), m.addr, Config{User: admin, Password: "wrong"}); err == nil || !strings.Contains(err.Error(), "master "+m.addr+": LOGIN as cyrus") {
		t.Errorf("Send with a wrong password: %v", err)
	}
	// A server that never greets: Send gives up at the timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = Send(ctx(t), ln.Addr().String(), Config{User: admin, Password: pw, Timeout: 200 * time.Millisecond})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send to a silent server: %v after %s", err, time.Since(start))
	}
}

func TestPrune(t *testing.T) {
	for _, caps := range [][]imap.Cap{{imap.CapUIDPlus}, nil} {
		m := newServer(t, caps...)
		c := cfg
		c.Mailbox = "canary"
		var sent []string
		for range 13 {
			k, err := Send(ctx(t), m.addr, c)
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, strings.Trim(k.MessageID, "<>"))
			if len(sent) == 3 {
				// Not a canary: Prune leaves it alone.
				m.user.Append("canary", literal{bytes.NewReader([]byte("Message-Id: <other@example>\r\n\r\nhi\r\n"))}, &imap.AppendOptions{})
			}
		}
		n, err := Prune(ctx(t), m.addr, c, 10)
		if err != nil || n != 3 {
			t.Fatalf("Prune (caps %v): %d, %v; want 3 deleted", caps, n, err)
		}
		got := canaries(t, m, "canary")
		want := append([]string{"other@example"}, sent[3:]...)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("after Prune (caps %v):\n got %q\nwant %q", caps, got, want)
		}
		if n, err := Prune(ctx(t), m.addr, c, 10); err != nil || n != 0 {
			t.Errorf("second Prune: %d, %v", n, err)
		}
	}
}

func TestCheckPrunes(t *testing.T) {
	m, reps := store(t, 0)
	for range Keep + 2 {
		if _, err := Check(ctx(t), m.addr, addrs(reps), cfg); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(canaries(t, m, "user/cyrplan-canary")); n != Keep {
		t.Errorf("%d canaries on the master after %d checks; want %d", n, Keep+2, Keep)
	}
}

func TestAlreadyExists(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox already exists"}, true}, // Cyrus 3.6
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "x"}, true},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Text: "Permission denied"}, false},
		{errors.New("already exists"), false}, // not a server's answer
	} {
		if got := alreadyExists(c.err); got != c.want {
			t.Errorf("alreadyExists(%v) = %v", c.err, got)
		}
	}
}

func TestPollAfter(t *testing.T) {
	defer func(a, b time.Duration) { minPoll, maxPoll = a, b }(minPoll, maxPoll)
	minPoll, maxPoll = 10*time.Millisecond, 250*time.Millisecond
	for elapsed, want := range map[time.Duration]time.Duration{
		0: 10 * time.Millisecond, 50 * time.Millisecond: 10 * time.Millisecond, 500 * time.Millisecond: 50 * time.Millisecond,
		10 * time.Second: 250 * time.Millisecond, -time.Second: 10 * time.Millisecond,
	} {
		if got := pollAfter(elapsed); got != want {
			t.Errorf("pollAfter(%s) = %s; want %s", elapsed, got, want)
		}
	}
}

func TestCompose(t *testing.T) {
	id, err := newMessageID()
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := newMessageID()
	if id == id2 || !regexp.MustCompile(`^<cyrplan-canary-[0-9a-f]{24}@cyrplan>$`).MatchString(id) {
		t.Errorf("message ids %q, %q", id, id2)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msg := string(compose(id, at))
	for _, want := range []string{"\r\nMessage-Id: " + id + "\r\n", "Date: Fri, 02 Jan 2026 03:04:05 +0000\r\n", "\r\n\r\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(strings.ReplaceAll(msg, "\r\n", ""), "\n") {
		t.Error("a bare LF in the message")
	}
}
