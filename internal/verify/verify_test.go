package verify

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/cyrplan/cyrplan/internal/report"
)

const (
	admin = "cyrus"
	pw    = "secret"
)

var login = Login{User: admin, Password: pw, Timeout: 5 * time.Second}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// counted is a listener that counts its open connections.
type counted struct {
	net.Listener
	open atomic.Int32
}

func listen(t *testing.T) *counted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &counted{Listener: ln}
}

func (l *counted) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *counted
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// allClosed fails t unless every connection to ls is closed soon: the
// servers close theirs when the client has closed its end.
func allClosed(t *testing.T, ls ...*counted) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, l := range ls {
		for l.open.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := l.open.Load(); n != 0 {
			t.Errorf("%d connections to %s left open", n, l.Addr())
		}
	}
}

// server is an in-memory IMAP server with one user, the admin.
type server struct {
	addr     string
	ln       *counted
	user     *imapmemserver.User
	boxes    int          // mailboxes created and not removed
	statuses atomic.Int32 // STATUS commands answered
	examines atomic.Int32 // EXAMINE commands answered
}

func newServer(t *testing.T, caps ...imap.Cap) *server {
	t.Helper()
	return newServerAs(t, pw, caps...)
}

// newServerAs is newServer with the admin's password password.
func newServerAs(t *testing.T, password string, caps ...imap.Cap) *server {
	t.Helper()
	s := &server{user: imapmemserver.NewUser(admin, password), ln: listen(t)}
	s.addr = s.ln.Addr().String()
	set := imap.CapSet{imap.CapIMAP4rev1: {}}
	for _, c := range caps {
		set[c] = struct{}{}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &memSession{srv: s}, nil, nil
		},
		Caps:         set,
		InsecureAuth: true,
		Logger:       discard{},
	})
	go srv.Serve(s.ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type discard struct{}

func (discard) Printf(string, ...any) {}

// memSession is a memserver session of the server's user that counts
// STATUS and EXAMINE commands.
type memSession struct {
	*imapmemserver.UserSession
	srv *server
}

func (s *memSession) Login(user, pass string) error {
	if err := s.srv.user.Login(user, pass); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.srv.user)
	return nil
}

func (s *memSession) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

func (s *memSession) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	s.srv.statuses.Add(1)
	return s.UserSession.Status(name, options)
}

func (s *memSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	if options != nil && options.ReadOnly {
		s.srv.examines.Add(1)
	}
	return s.UserSession.Select(name, options)
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// create makes mailbox name on s, holding a message for each of ids.
func (s *server) create(t *testing.T, name string, ids ...string) {
	t.Helper()
	if err := s.user.Create(name, nil); err != nil {
		t.Fatal(err)
	}
	s.boxes++
	s.add(t, name, ids...)
}

func (s *server) remove(t *testing.T, name string) {
	t.Helper()
	if err := s.user.Delete(name); err != nil {
		t.Fatal(err)
	}
	s.boxes--
}

// add appends a message with Message-Id <id> to mailbox name for each of ids.
func (s *server) add(t *testing.T, name string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		msg := "Message-Id: <" + id + ">\r\nSubject: " + id + "\r\n\r\nhello\r\n"
		if _, err := s.user.Append(name, literal{bytes.NewReader([]byte(msg))}, &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// fill gives s the mailboxes every test starts with; servers filled the
// same way are identical, UIDVALIDITY included.
func (s *server) fill(t *testing.T) *server {
	s.create(t, "user/anne", "a1@x", "a2@x")
	s.create(t, "user/anne/Entwürfe", "d1@x")
	s.create(t, "user/bob")
	s.create(t, "user/carol", "c1@x", "c1@x", "c2@x") // a duplicate Message-Id
	return s
}

// capSets are the two ways of reading a server: STATUS for each mailbox,
// and LIST-STATUS.
var capSets = []struct {
	name string
	caps []imap.Cap
}{
	{"STATUS", nil},
	{"LIST-STATUS", []imap.Cap{imap.CapListExtended, imap.CapListStatus}},
}

func TestStore(t *testing.T) {
	for _, cs := range capSets {
		t.Run(cs.name, func(t *testing.T) {
			for _, c := range []struct {
				name      string
				change    func(t *testing.T, m, r *server)
				mailboxes int // on the master
				want      []report.Mailbox
			}{
				{"identical", func(*testing.T, *server, *server) {}, 4, []report.Mailbox{}},
				{"appended to the master only", func(t *testing.T, m, _ *server) { m.add(t, "user/anne/Entwürfe", "d2@x") },
					4, []report.Mailbox{{Name: "user/anne/Entwürfe", Missing: 1, What: []string{
						"messages: master 2, replica 1", "uidnext: master 3, replica 2", "1 message missing on the replica (by Message-Id)"}}}},
				{"other messages on the replica", func(t *testing.T, m, r *server) {
					m.add(t, "user/carol", "c3@x")
					r.add(t, "user/carol", "c1@x", "c4@x", "c5@x")
				}, 4, []report.Mailbox{{Name: "user/carol", Missing: 1, Extra: 3, What: []string{
					"messages: master 4, replica 6", "uidnext: master 5, replica 7",
					"1 message missing on the replica (by Message-Id)", "3 messages extra on the replica (by Message-Id)"}}}},
				{"a mailbox on one side only", func(t *testing.T, m, r *server) {
					m.create(t, "user/dave", "x@x")
					r.create(t, "user/anne/Sent")
				}, 5, []report.Mailbox{
					{Name: "user/anne/Sent", What: []string{"extra on the replica"}},
					{Name: "user/dave", What: []string{"missing on the replica"}},
				}},
				{"recreated on the replica", func(t *testing.T, _, r *server) {
					r.remove(t, "user/bob")
					r.create(t, "user/bob")
				}, 4, []report.Mailbox{{Name: "user/bob", What: []string{"uidvalidity: master 3, replica 5"}}}},
			} {
				t.Run(c.name, func(t *testing.T) {
					m, r := newServer(t, cs.caps...).fill(t), newServer(t, cs.caps...).fill(t)
					c.change(t, m, r)
					before := time.Now().UTC()
					v := Store(ctx(t), "slot1", m.addr, map[string]string{"slot2": r.addr}, login)
					if v.Error != "" || len(v.Replicas) != 1 || v.Replicas[0].Error != "" {
						t.Fatalf("Store: %+v", v)
					}
					if v.Master != "slot1" || v.Replicas[0].Replica != "slot2" || v.At.Before(before) || v.At.Location() != time.UTC {
						t.Errorf("Store: %+v", v)
					}
					if v.Mailboxes != c.mailboxes {
						t.Errorf("%d mailboxes on the master; want %d", v.Mailboxes, c.mailboxes)
					}
					if got := v.Replicas[0].Divergent; !reflect.DeepEqual(got, c.want) {
						t.Errorf("divergent:\n got %#v\nwant %#v", got, c.want)
					}
					// Message-Ids are read where the counts differ, and only there.
					var examined int32
					for _, d := range c.want {
						if d.Missing+d.Extra > 0 {
							examined++
						}
					}
					if m.examines.Load() != examined || r.examines.Load() != examined {
						t.Errorf("%d EXAMINEs on the master, %d on the replica; want %d", m.examines.Load(), r.examines.Load(), examined)
					}
					// With LIST-STATUS, no STATUS commands; without, one per mailbox.
					for _, s := range []*server{m, r} {
						want := int32(s.boxes)
						if cs.caps != nil {
							want = 0
						}
						if got := s.statuses.Load(); got != want {
							t.Errorf("%d STATUS commands on %s; want %d", got, s.addr, want)
						}
					}
					allClosed(t, m.ln, r.ln)
				})
			}
		})
	}
}

// down is an address nothing listens on (any more).
func down(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStoreReplicas(t *testing.T) {
	m := newServer(t).fill(t)
	m.add(t, "user/anne", "a3@x")
	same, behind, alsoBehind := newServer(t).fill(t), newServer(t).fill(t), newServer(t).fill(t)
	same.add(t, "user/anne", "a3@x")
	gone := down(t)
	v := Store(ctx(t), "m", m.addr, map[string]string{"r4": alsoBehind.addr, "r2": gone, "r1": same.addr, "r3": behind.addr}, login)
	if v.Error != "" || v.Mailboxes != 4 {
		t.Fatalf("Store: %+v", v)
	}
	var names []string
	for _, c := range v.Replicas {
		names = append(names, c.Replica)
	}
	if !slices.Equal(names, []string{"r1", "r2", "r3", "r4"}) {
		t.Fatalf("replicas %q; want them sorted", names)
	}
	if c := v.Replicas[0]; c.Error != "" || c.Divergent == nil || len(c.Divergent) != 0 {
		t.Errorf("identical replica: %+v", c)
	}
	// The port was closed; under load another test may have been given
	// it since, and a listener that does not accept times the dial out.
	if c := v.Replicas[1]; !strings.HasPrefix(c.Error, gone+": ") || c.Divergent != nil ||
		!strings.Contains(c.Error, "connection refused") && !strings.Contains(c.Error, "timeout") {
		t.Errorf("replica down: %+v", c)
	}
	for _, c := range v.Replicas[2:] {
		if c.Error != "" || len(c.Divergent) != 1 || c.Divergent[0].Name != "user/anne" || c.Divergent[0].Missing != 1 {
			t.Errorf("replica behind: %+v", c)
		}
	}
	if v.Divergent() != 2 {
		t.Errorf("Divergent() = %d", v.Divergent())
	}
	// Both replicas behind asked for user/anne's Message-Ids: the master
	// read them once.
	if n := m.examines.Load(); n != 1 {
		t.Errorf("%d EXAMINEs on the master; want 1", n)
	}
	allClosed(t, m.ln, same.ln, behind.ln, alsoBehind.ln)
}

func TestStoreNoReplicas(t *testing.T) {
	m := newServer(t).fill(t)
	v := Store(ctx(t), "m", m.addr, nil, login)
	if v.Error != "" || v.Mailboxes != 4 || v.Replicas == nil || len(v.Replicas) != 0 {
		t.Errorf("Store without replicas: %+v", v)
	}
	allClosed(t, m.ln)
}

func TestStoreMasterDown(t *testing.T) {
	r := newServer(t).fill(t)
	addr := down(t)
	v := Store(ctx(t), "m", addr, map[string]string{"r": r.addr}, login)
	if !strings.HasPrefix(v.Error, "master "+addr+": ") || v.Replicas != nil || v.Master != "m" || v.At.IsZero() {
		t.Errorf("master down: %+v", v)
	}
}

func TestStoreWrongPassword(t *testing.T) {
	m, r := newServer(t).fill(t), newServerAs(t, "other").fill(t)
	v := Store(ctx(t), "m", m.addr, map[string]string{"r": r.addr}, login)
	if c := v.Replicas[0]; !strings.HasPrefix(c.Error, r.addr+": LOGIN as cyrus: ") || strings.Contains(c.Error, pw) {
		t.Errorf("wrong password on the replica: %+v", c)
	}
	bad := login
	bad.Password = "wrong-password"
	v = Store(ctx(t), "m", m.addr, map[string]string{"r": r.addr}, bad)
	if !strings.HasPrefix(v.Error, "master "+m.addr+": LOGIN as cyrus: ") || strings.Contains(v.Error, bad.Password) {
		t.Errorf("wrong password on the master: %+v", v)
	}
	allClosed(t, m.ln, r.ln)
}

// A server that never greets: each step is bounded.
func TestStoreTimeout(t *testing.T) {
	m := newServer(t).fill(t)
	ln := listen(t)
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
	l := login
	l.Timeout = 200 * time.Millisecond
	start := time.Now()
	v := Store(ctx(t), "m", m.addr, map[string]string{"silent": ln.Addr().String()}, l)
	if c := v.Replicas[0]; !strings.HasPrefix(c.Error, ln.Addr().String()+": no answer within 200ms (greeting: ") {
		t.Errorf("silent replica: %+v after %s", c, time.Since(start))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Store took %s", took)
	}
}

func TestStoreCanceled(t *testing.T) {
	m := newServer(t).fill(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	v := Store(c, "m", m.addr, nil, login)
	if !strings.Contains(v.Error, "canceled") {
		t.Errorf("canceled: %+v", v)
	}
}

// fake is a scripted server that answers as Cyrus 3.6 does, for what the
// memserver cannot do: HIGHESTMODSEQ (CONDSTORE) in STATUS and in
// LIST-STATUS, \Noselect mailboxes, STATUS refused, a LOGIN answer that
// echoes the password.
type fake struct {
	ln    *counted
	caps  string // advertised after LOGIN
	boxes []fakeBox
	// loginNo, if set, is the text of LOGIN's NO.
	loginNo string
	// before, if set, runs before each greeting.
	before func()
	start  sync.Once
	mu     sync.Mutex
	cmds   []string
}

type fakeBox struct {
	name, attrs string
	// status is the whole status ("MESSAGES 1 UIDNEXT 2 ..."), a
	// refusal ("NO ...") or, empty, none: the mailbox is \Noselect or,
	// to STATUS, gone.
	status string
}

// newFake makes a fake with caps and boxes; it serves from the first
// call of its addr, so that the test may set loginNo and before first.
func newFake(t *testing.T, caps string, boxes ...fakeBox) *fake {
	f := &fake{ln: listen(t), caps: strings.TrimSpace("IMAP4rev1 LITERAL+ ID ENABLE ACL UIDPLUS " + caps), boxes: boxes}
	t.Cleanup(func() { f.ln.Close() })
	return f
}

func (f *fake) addr() string {
	f.start.Do(func() {
		go func() {
			for {
				c, err := f.ln.Accept()
				if err != nil {
					return
				}
				go f.serve(c)
			}
		}()
	})
	return f.ln.Addr().String()
}

func (f *fake) serve(c net.Conn) {
	defer c.Close()
	if f.before != nil {
		f.before()
	}
	fmt.Fprintf(c, "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE AUTH=PLAIN SASL-IR] fake Cyrus IMAP 3.6 server ready\r\n")
	in := bufio.NewScanner(c)
	for in.Scan() {
		f.mu.Lock()
		f.cmds = append(f.cmds, in.Text())
		f.mu.Unlock()
		tag, cmd, _ := strings.Cut(in.Text(), " ")
		verb, args, _ := strings.Cut(cmd, " ")
		if f.answer(c, tag, strings.ToUpper(verb), args) {
			return
		}
	}
}

// answer answers one command and says whether that ends the session.
func (f *fake) answer(c net.Conn, tag, verb, args string) bool {
	switch verb {
	case "LOGIN":
		if f.loginNo != "" {
			fmt.Fprintf(c, "%s NO %s\r\n", tag, f.loginNo)
		} else {
			fmt.Fprintf(c, "%s OK [CAPABILITY %s] User logged in\r\n", tag, f.caps)
		}
	case "CAPABILITY":
		fmt.Fprintf(c, "* CAPABILITY %s\r\n%s OK Completed\r\n", f.caps, tag)
	case "LIST":
		f.list(c, tag, args)
	case "STATUS":
		f.status(c, tag, args)
	case "LOGOUT":
		fmt.Fprintf(c, "* BYE LOGOUT received\r\n%s OK Completed\r\n", tag)
		return true
	default:
		fmt.Fprintf(c, "%s BAD Unrecognized command\r\n", tag)
	}
	return false
}

// list answers LIST "" "*", with RETURN (STATUS (...)) as Cyrus does: a
// mailbox it cannot give the status of is \Noselect.
func (f *fake) list(c net.Conn, tag, args string) {
	_, items, withStatus := strings.Cut(args, "RETURN (STATUS (")
	items, _, _ = strings.Cut(items, ")")
	for _, b := range f.boxes {
		attrs, refused := b.attrs, strings.HasPrefix(b.status, "NO ")
		if withStatus && refused {
			attrs = strings.TrimSpace(attrs + ` \Noselect`)
		}
		fmt.Fprintf(c, "* LIST (%s) \"/\" %s\r\n", attrs, b.name)
		if withStatus && b.status != "" && !refused {
			fmt.Fprintf(c, "* STATUS %s (%s)\r\n", b.name, pick(b.status, items))
		}
	}
	fmt.Fprintf(c, "%s OK Completed\r\n", tag)
}

func (f *fake) status(c net.Conn, tag, args string) {
	name, items, _ := strings.Cut(args, " ")
	name = strings.Trim(name, `"`)
	items = strings.Trim(items, "()")
	if strings.Contains(items, "HIGHESTMODSEQ") && !strings.Contains(f.caps, "CONDSTORE") {
		fmt.Fprintf(c, "%s BAD Invalid Status attributes\r\n", tag)
		return
	}
	for _, b := range f.boxes {
		switch {
		case b.name != name || b.status == "":
		case strings.HasPrefix(b.status, "NO "):
			fmt.Fprintf(c, "%s %s\r\n", tag, b.status)
			return
		default:
			fmt.Fprintf(c, "* STATUS %s (%s)\r\n%s OK Completed\r\n", name, pick(b.status, items), tag)
			return
		}
	}
	fmt.Fprintf(c, "%s NO Mailbox does not exist\r\n", tag)
}

// pick is what of status ("ITEM value ...") items asks for.
func pick(status, items string) string {
	var out []string
	f := strings.Fields(status)
	for i := 0; i+1 < len(f); i += 2 {
		if slices.Contains(strings.Fields(items), f[i]) {
			out = append(out, f[i], f[i+1])
		}
	}
	return strings.Join(out, " ")
}

// sent is the commands f got with verb, without their tags.
func (f *fake) sent(verb string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.cmds {
		if _, cmd, _ := strings.Cut(c, " "); strings.HasPrefix(cmd, verb+" ") {
			out = append(out, cmd)
		}
	}
	return out
}

const (
	anne12 = "MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1700000000 HIGHESTMODSEQ 12"
	anne11 = "MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1700000000 HIGHESTMODSEQ 11"
	bob    = "MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1700000001 HIGHESTMODSEQ 1"
	cyrus  = "CONDSTORE LIST-EXTENDED LIST-STATUS"
)

var user = fakeBox{name: "user", attrs: `\Noselect \HasChildren`}

func TestStoreModSeq(t *testing.T) {
	m := newFake(t, cyrus, user, fakeBox{"user/anne", "", anne12}, fakeBox{"user/bob", "", bob})
	// Cyrus with LIST-STATUS.
	ls := newFake(t, cyrus, user, fakeBox{"user/anne", "", anne11}, fakeBox{"user/bob", "", bob})
	// CONDSTORE without LIST-STATUS: STATUS with HIGHESTMODSEQ, a mailbox
	// refused, another gone between LIST and STATUS.
	st := newFake(t, "CONDSTORE", user, fakeBox{"user/anne", "", anne11}, fakeBox{"user/bob", "", "NO Permission denied"},
		fakeBox{"user/gone", "", ""})
	// Neither: HIGHESTMODSEQ is not compared (nor asked for: the fake
	// would refuse it).
	plain := newFake(t, "", user, fakeBox{"user/anne", "", anne11}, fakeBox{"user/bob", "", bob})
	v := Store(ctx(t), "m", m.addr(), map[string]string{"ls": ls.addr(), "st": st.addr(), "plain": plain.addr()}, login)
	if v.Error != "" || v.Mailboxes != 2 {
		t.Fatalf("Store: %+v", v)
	}
	want := map[string][]report.Mailbox{
		"ls":    {{Name: "user/anne", What: []string{"highestmodseq: master 12, replica 11"}}},
		"plain": {},
		"st": {
			{Name: "user/anne", What: []string{"highestmodseq: master 12, replica 11"}},
			{Name: "user/bob", What: []string{"unreadable on the replica: STATUS: imap: NO Permission denied"}},
		},
	}
	for _, c := range v.Replicas {
		if c.Error != "" || !reflect.DeepEqual(c.Divergent, want[c.Replica]) {
			t.Errorf("replica %s: %+v; want %+v", c.Replica, c, want[c.Replica])
		}
	}
	for _, f := range []*fake{m, ls} {
		if l := f.sent("LIST"); len(l) != 1 || !strings.Contains(l[0], "RETURN (STATUS (") || !strings.Contains(l[0], "HIGHESTMODSEQ") {
			t.Errorf("LIST on %s: %q", f.addr(), l)
		}
		if s := f.sent("STATUS"); len(s) != 0 {
			t.Errorf("STATUS on %s with LIST-STATUS: %q", f.addr(), s)
		}
	}
	if s := st.sent("STATUS"); len(s) != 3 || !strings.Contains(s[0], "HIGHESTMODSEQ") {
		t.Errorf("STATUS on the CONDSTORE replica: %q", s)
	}
	if s := plain.sent("STATUS"); len(s) != 2 || strings.Contains(strings.Join(s, " "), "HIGHESTMODSEQ") {
		t.Errorf("STATUS on the plain replica: %q", s)
	}
	for _, f := range []*fake{st, plain} {
		if l := f.sent("LIST"); len(l) != 1 || strings.Contains(l[0], "RETURN") {
			t.Errorf("LIST on %s without LIST-STATUS: %q", f.addr(), l)
		}
	}
	allClosed(t, m.ln, ls.ln, st.ln, plain.ln)
}

// Replicas are read at once: neither is greeted before both connected.
func TestStoreParallel(t *testing.T) {
	m := newFake(t, cyrus, fakeBox{"user/anne", "", anne12})
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	gate := func() {
		arrived.Done()
		select {
		case <-both:
		case <-time.After(10 * time.Second):
		}
	}
	var addrs = map[string]string{}
	for _, n := range []string{"r1", "r2"} {
		r := newFake(t, cyrus, fakeBox{"user/anne", "", anne12})
		r.before = gate
		addrs[n] = r.addr()
	}
	l := login
	l.Timeout = 3 * time.Second
	v := Store(ctx(t), "m", m.addr(), addrs, l)
	for _, c := range v.Replicas {
		if c.Error != "" || len(c.Divergent) != 0 {
			t.Errorf("replica %s: %+v", c.Replica, c)
		}
	}
}

// A server may echo what it was sent; the password never gets out.
func TestStoreScrubsPassword(t *testing.T) {
	m := newFake(t, cyrus, fakeBox{"user/anne", "", anne12})
	m.loginNo = "Login failed for " + admin + " with password " + pw
	v := Store(ctx(t), "m", m.addr(), nil, login)
	if !strings.Contains(v.Error, "LOGIN as cyrus: imap: NO Login failed for cyrus with password ********") || strings.Contains(v.Error, pw) {
		t.Errorf("Store: %q", v.Error)
	}
	r := newFake(t, cyrus, fakeBox{"user/anne", "", anne12})
	r.loginNo = m.loginNo
	v = Store(ctx(t), "m", newFake(t, cyrus).addr(), map[string]string{"r": r.addr()}, login)
	if c := v.Replicas[0]; !strings.Contains(c.Error, "********") || strings.Contains(c.Error, pw) {
		t.Errorf("Store: %+v", c)
	}
}

func TestCompareIDs(t *testing.T) {
	set := func(ids ...string) multiset {
		s := multiset{}
		for _, id := range ids {
			s.add(id)
		}
		return s
	}
	for _, c := range []struct {
		master, replica []string
		missing, extra  int
	}{
		{nil, nil, 0, 0},
		{[]string{"<a@x>", "<b@x>"}, []string{"<b@x>", "<a@x>"}, 0, 0},
		{[]string{"<a@x>", "<b@x>"}, []string{"<a@x>"}, 1, 0},
		{[]string{"<a@x>"}, []string{"<a@x>", "<c@x>"}, 0, 1},
		// Multisets: a Message-Id twice on the master, once on the replica.
		{[]string{"<a@x>", "<a@x>", "<b@x>"}, []string{"<a@x>", "<b@x>", "<b@x>", "<b@x>"}, 1, 2},
		// Messages without a Message-Id count as one id, "".
		{[]string{"", "", "<a@x>"}, []string{"", "<b@x>"}, 2, 1},
	} {
		missing, extra := compareIDs(set(c.master...), set(c.replica...))
		if missing != c.missing || extra != c.extra {
			t.Errorf("compareIDs(%q, %q) = %d, %d; want %d, %d", c.master, c.replica, missing, extra, c.missing, c.extra)
		}
	}
	s := set("<a@x>", "<a@x>")
	for h, n := range s {
		if len(h) != 16 || n != 2 || len(s) != 1 {
			t.Errorf("multiset %v", s)
		}
	}
}

func TestMessageID(t *testing.T) {
	for header, want := range map[string]string{
		"Message-Id: <a@x>\r\n\r\n":          "<a@x>",
		"MESSAGE-ID:   <a@x> \r\n\r\n":       "<a@x>",
		"message-id:\r\n <folded@x>\r\n\r\n": "<folded@x>",
		"\r\n":                               "",
		"":                                   "",
		"Message-Id: <a@x>\r\nbroken\r\n":    "<a@x>",
	} {
		if got := messageID([]byte(header)); got != want {
			t.Errorf("messageID(%q) = %q; want %q", header, got, want)
		}
	}
}

func TestListOptions(t *testing.T) {
	opts := &imap.StatusOptions{NumMessages: true}
	for _, c := range []struct {
		caps imap.CapSet
		want bool
	}{
		{nil, false},
		{imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapListExtended: {}}, false},
		{imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapListStatus: {}}, true},
		{imap.CapSet{imap.CapIMAP4rev2: {}}, true},
	} {
		got := listOptions(c.caps, opts)
		if (got != nil) != c.want || got != nil && got.ReturnStatus != opts {
			t.Errorf("listOptions(%v) = %+v", c.caps, got)
		}
	}
}

func TestOwnerOf(t *testing.T) {
	for mbox, want := range map[string]string{
		"user/brong":                  "brong",
		"user/brong/Sent":             "brong",
		"user.brong.Sent":             "brong",
		"user/brong/Sent@example.com": "brong@example.com",
		"user/brong@example.com":      "brong@example.com",
		"user/":                       "",
		"user":                        "",
		"users/brong":                 "",
		"shared/news":                 "",
		"INBOX":                       "",
		"user/cyrplan-canary":         "cyrplan-canary",
	} {
		if got := ownerOf(mbox); got != want {
			t.Errorf("ownerOf(%q) = %q, want %q", mbox, got, want)
		}
	}
}
