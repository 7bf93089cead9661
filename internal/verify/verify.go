// Package verify proves that a store's replicas hold what its master
// holds. It logs in over IMAP as an admin to the master and to every
// replica, reads the state of every mailbox the admin sees (UIDVALIDITY,
// the message count, UIDNEXT and, where the server has CONDSTORE,
// HIGHESTMODSEQ) and lists each mailbox that differs and how. Where the
// message counts differ it also compares the mailbox's Message-Ids, as
// multisets of their hashes, to tell how many messages the replica lacks
// and how many it has beyond the master.
//
// On Cyrus an admin has only the l and a rights on other users'
// mailboxes. Cyrus answers LIST-STATUS (RFC 5819) from its status data
// without asking for the r right, so verify reads the mailboxes that way
// whenever the server has LIST-STATUS; a mailbox whose status Cyrus
// cannot give there is listed \Noselect, and skipped like every \Noselect
// mailbox. STATUS and EXAMINE do need the r right: on a server without
// LIST-STATUS such a mailbox is reported as unreadable, and where the
// counts differ its Message-Ids can only be compared when the admin may
// read it (the difference then says why they were not).
package verify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/cyrplan/cyrplan/internal/report"
)

// DefaultTimeout bounds each step when Login.Timeout is zero.
const DefaultTimeout = time.Minute

// pipeline is how many STATUS commands are sent at once, as one step,
// to a server without LIST-STATUS.
const pipeline = 100

// Login is how verify logs in: an admin's user and password, LOGIN over
// plain IMAP.
type Login struct {
	User, Password string
	// Timeout bounds each step on a server: connecting, logging in,
	// listing the mailboxes (with their status where the server has
	// LIST-STATUS), each batch of STATUS commands, reading one mailbox's
	// Message-Ids. Zero means DefaultTimeout.
	Timeout time.Duration

	as string // the user to act as, by SASL PLAIN's authorization identity
}

func (l Login) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return DefaultTimeout
}

// Store compares the mailboxes of master (host:port) with those of each
// replica (name -> host:port), all replicas at once, and returns the
// result: At is now (UTC), Master is masterName, Mailboxes the number of
// mailboxes on the master, and Replicas holds one Comparison per replica,
// sorted by name, each with its divergent mailboxes sorted by name. It
// reads the master first, then the replicas: a change the master
// replicates while Store runs may show as a difference. When the master
// cannot be read, Error says why and no replica is compared; a replica
// that cannot be read has its Comparison's Error. Every connection is
// closed before Store returns, and no error or difference in the result
// holds login.Password.
func Store(ctx context.Context, masterName, master string, replicas map[string]string, login Login) *report.Verify {
	v := &report.Verify{At: time.Now().UTC(), Master: masterName}
	m, err := readMaster(ctx, master, login)
	if err != nil {
		v.Error = "master " + err.Error()
		scrub(v, login.Password)
		return v
	}
	defer m.s.close()
	v.Mailboxes = len(m.snap.boxes)
	names := slices.Sorted(maps.Keys(replicas))
	v.Replicas = make([]report.Comparison, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { v.Replicas[i] = compare(ctx, m, name, replicas[name], login) })
	}
	wg.Wait()
	m.s.logout(ctx)
	scrub(v, login.Password)
	return v
}

// compare reads the replica at addr and compares it with the master.
func compare(ctx context.Context, m *master, name, addr string, login Login) report.Comparison {
	c := report.Comparison{Replica: name}
	r, err := open(ctx, addr, login)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer r.close()
	snap, err := r.snapshot(ctx)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Divergent = diff(m.snap, snap)
	for i := range c.Divergent {
		d := &c.Divergent[i]
		if countsDiffer(m.snap, snap, d.Name) {
			byMessageID(ctx, m, r, d)
		}
	}
	r.logout(ctx)
	return c
}

// byMessageID compares the Message-Ids of mailbox d on the master and on
// the replica r, and records in d how many the replica lacks and how many
// it has beyond the master.
func byMessageID(ctx context.Context, m *master, r *session, d *report.Mailbox) {
	want, err := m.messageIDs(ctx, d.Name)
	if err != nil {
		d.What = append(d.What, "not compared by Message-Id: "+err.Error())
		return
	}
	have, err := r.messageIDs(ctx, d.Name)
	if err != nil {
		d.What = append(d.What, "not compared by Message-Id: "+err.Error())
		return
	}
	d.Missing, d.Extra = compareIDs(want, have)
	if d.Missing > 0 {
		d.What = append(d.What, messages(d.Missing)+" missing on the replica (by Message-Id)")
	}
	if d.Extra > 0 {
		d.What = append(d.What, messages(d.Extra)+" extra on the replica (by Message-Id)")
	}
}

func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
}

// scrub takes the password out of every message of v, should a server
// have echoed it in an answer.
func scrub(v *report.Verify, password string) {
	if password == "" {
		return
	}
	r := strings.NewReplacer(password, "********")
	v.Error = r.Replace(v.Error)
	for i := range v.Replicas {
		c := &v.Replicas[i]
		c.Error = r.Replace(c.Error)
		for j := range c.Divergent {
			what := c.Divergent[j].What
			for k := range what {
				what[k] = r.Replace(what[k])
			}
		}
	}
}

// master is the master's session and what it holds, shared by the
// comparisons with the replicas: the Message-Ids of a mailbox are read
// from it once, for whichever replica asks first.
type master struct {
	snap *snapshot
	mu   sync.Mutex // guards s's selected mailbox and ids
	s    *session
	ids  map[string]fetched
}

type fetched struct {
	ids multiset
	err error
}

func readMaster(ctx context.Context, addr string, login Login) (*master, error) {
	s, err := open(ctx, addr, login)
	if err != nil {
		return nil, err
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		s.close()
		return nil, err
	}
	return &master{snap: snap, s: s, ids: map[string]fetched{}}, nil
}

func (m *master) messageIDs(ctx context.Context, mbox string) (multiset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.ids[mbox]
	if !ok {
		f.ids, f.err = m.s.messageIDs(ctx, mbox)
		m.ids[mbox] = f
	}
	return f.ids, f.err
}

// status is what a server says of one mailbox.
type status struct {
	messages, uidNext, uidValidity uint32
	modSeq                         uint64
	err                            string // why the server gave no status
}

// snapshot is the status of every selectable mailbox on a server.
type snapshot struct {
	boxes  map[string]status
	modSeq bool // the server has CONDSTORE: modSeq was asked for
}

// diff lists the mailboxes that differ between master and replica,
// sorted by name; it is empty, not nil, when none does.
func diff(master, replica *snapshot) []report.Mailbox {
	names := slices.Collect(maps.Keys(master.boxes))
	for n := range replica.boxes {
		if _, ok := master.boxes[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := []report.Mailbox{}
	for _, n := range names {
		m, onMaster := master.boxes[n]
		r, onReplica := replica.boxes[n]
		var what []string
		switch {
		case !onReplica:
			what = []string{"missing on the replica"}
		case !onMaster:
			what = []string{"extra on the replica"}
		default:
			what = differences(m, r, master.modSeq && replica.modSeq)
		}
		if len(what) > 0 {
			out = append(out, report.Mailbox{Name: n, What: what})
		}
	}
	return out
}

// differences says how the status of a mailbox on the replica, r,
// differs from its status on the master, m; withModSeq compares
// HIGHESTMODSEQ too.
func differences(m, r status, withModSeq bool) []string {
	if m.err != "" || r.err != "" {
		return unreadable(m, r)
	}
	var what []string
	add := func(item string, master, replica uint64) {
		if master != replica {
			what = append(what, fmt.Sprintf("%s: master %d, replica %d", item, master, replica))
		}
	}
	add("messages", uint64(m.messages), uint64(r.messages))
	add("uidnext", uint64(m.uidNext), uint64(r.uidNext))
	add("uidvalidity", uint64(m.uidValidity), uint64(r.uidValidity))
	if withModSeq {
		add("highestmodseq", m.modSeq, r.modSeq)
	}
	return what
}

func unreadable(m, r status) []string {
	var what []string
	if m.err != "" {
		what = append(what, "unreadable on the master: "+m.err)
	}
	if r.err != "" {
		what = append(what, "unreadable on the replica: "+r.err)
	}
	return what
}

// countsDiffer says whether mailbox name, read on both sides, holds a
// different number of messages on each.
func countsDiffer(master, replica *snapshot, name string) bool {
	m, onMaster := master.boxes[name]
	r, onReplica := replica.boxes[name]
	return onMaster && onReplica && m.err == "" && r.err == "" && m.messages != r.messages
}

// multiset counts the messages of a mailbox by the hash of their
// Message-Id.
type multiset map[string]int

// add counts one message with Message-Id id ("" for none).
func (s multiset) add(id string) {
	sum := sha256.Sum256([]byte(id))
	s[hex.EncodeToString(sum[:8])]++
}

// compareIDs says how many of master's messages replica lacks and how
// many it has beyond them.
func compareIDs(master, replica multiset) (missing, extra int) {
	for h, n := range master {
		missing += max(n-replica[h], 0)
	}
	for h, n := range replica {
		extra += max(n-master[h], 0)
	}
	return missing, extra
}

// messageID is the Message-Id in header, the answer to a FETCH of
// BODY[HEADER.FIELDS (MESSAGE-ID)]: "" when there is none, and what
// could be read of a malformed header.
func messageID(header []byte) string {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(header))).ReadMIMEHeader()
	return h.Get("Message-Id")
}

// session is one logged-in connection to a server.
type session struct {
	addr    string
	cl      *imapclient.Client
	timeout time.Duration
	caps    imap.CapSet // after LOGIN
	login   Login       // how it logged in, to log in again as a mailbox's owner
}

// open connects to addr and logs in. Its errors name addr.
func open(ctx context.Context, addr string, login Login) (*session, error) {
	s := &session{addr: addr, timeout: login.timeout(), login: login}
	dial, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := new(net.Dialer).DialContext(dial, "tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err // net's message repeats the address
		}
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	s.cl = imapclient.New(conn, nil)
	err = s.step(ctx, func() error {
		if err := s.cl.WaitGreeting(); err != nil {
			return fmt.Errorf("greeting: %w", err)
		}
		if login.as != "" {
			if err := s.cl.Authenticate(sasl.NewPlainClient(login.as, login.User, login.Password)); err != nil {
				return fmt.Errorf("AUTHENTICATE PLAIN as %s for %s: %w", login.User, login.as, err)
			}
		} else if err := s.cl.Login(login.User, login.Password).Wait(); err != nil {
			return fmt.Errorf("LOGIN as %s: %w", login.User, err)
		}
		s.caps = s.cl.Caps()
		return nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// step runs f, which sends commands and waits for their answers, bounded
// by the session's timeout and by ctx: when either ends first, the
// connection is closed, which ends f. Its errors name the address and,
// first, the end of the step if that is what broke f.
func (s *session) step(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, fmt.Errorf("no answer within %s", s.timeout))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.cl.Close() })
	defer stop()
	err := f()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("%s: %w (%v)", s.addr, cause, err)
	}
	return fmt.Errorf("%s: %w", s.addr, err)
}

// logout says goodbye, unless ctx has ended; its answer does not matter.
func (s *session) logout(ctx context.Context) {
	if ctx.Err() == nil {
		s.step(ctx, func() error { return s.cl.Logout().Wait() })
	}
}

func (s *session) close() { s.cl.Close() }

// snapshot reads the status of every selectable mailbox: with LIST-STATUS
// where the server has it, then with STATUS, pipelined, for those the
// list gave none for (all of them without LIST-STATUS).
func (s *session) snapshot(ctx context.Context) (*snapshot, error) {
	snap := &snapshot{boxes: map[string]status{}, modSeq: s.caps.Has(imap.CapCondStore)}
	opts := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: snap.modSeq}
	var list []*imap.ListData
	err := s.step(ctx, func() (err error) {
		list, err = s.cl.List("", "*", listOptions(s.caps, opts)).Collect()
		if err != nil {
			err = fmt.Errorf(`LIST "" "*": %w`, err)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var ask []string
	for _, l := range list {
		switch {
		case !selectable(l):
		case l.Status != nil:
			snap.boxes[l.Mailbox] = fromStatus(l.Status)
		default:
			ask = append(ask, l.Mailbox)
		}
	}
	for batch := range slices.Chunk(ask, pipeline) {
		if err := s.step(ctx, func() error { return s.status(batch, opts, snap.boxes) }); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// listOptions asks LIST for the status of each mailbox, as opts says,
// when the server has LIST-STATUS (IMAP4rev2 includes it).
func listOptions(caps imap.CapSet, opts *imap.StatusOptions) *imap.ListOptions {
	if !caps.Has(imap.CapListStatus) {
		return nil
	}
	return &imap.ListOptions{ReturnStatus: opts}
}

func selectable(l *imap.ListData) bool {
	return !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent)
}

func fromStatus(d *imap.StatusData) status {
	if d.NumMessages == nil {
		return status{err: "the status has no MESSAGES"}
	}
	return status{messages: *d.NumMessages, uidNext: uint32(d.UIDNext), uidValidity: d.UIDValidity, modSeq: d.HighestModSeq}
}

// status sends a STATUS command for each of names at once and records the
// answers in boxes. A mailbox the server says does not exist (any more)
// is left out; one it refuses is recorded as unreadable.
func (s *session) status(names []string, opts *imap.StatusOptions, boxes map[string]status) error {
	cmds := make([]*imapclient.StatusCommand, len(names))
	for i, n := range names {
		cmds[i] = s.cl.Status(n, opts)
	}
	for i, cmd := range cmds {
		data, err := cmd.Wait()
		var ie *imap.Error
		switch {
		case err == nil:
			boxes[names[i]] = fromStatus(data)
		case !errors.As(err, &ie):
			return fmt.Errorf("STATUS %s: %w", names[i], err)
		case !nonexistent(ie):
			boxes[names[i]] = status{err: fmt.Sprintf("STATUS: %v", ie)}
		}
	}
	return nil
}

// nonexistent recognises the answer for a mailbox that does not exist:
// the NONEXISTENT code (RFC 5530) or, from servers that send no code
// (Cyrus 3.6 says "NO Mailbox does not exist"), its text.
func nonexistent(err *imap.Error) bool {
	return err.Code == imap.ResponseCodeNonExistent || strings.Contains(strings.ToLower(err.Text), "does not exist")
}

// idSection is the part of a message that holds its Message-Id.
var idSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-Id"}, Peek: true}

// messageIDs examines mbox (read-only) and reads the Message-Id of each
// of its messages. Cyrus gives an admin no right to read a user's
// mailbox, so when EXAMINE is refused it does it again in a session of
// its own as the mailbox's owner, authorized by the admin's credentials
// (SASL PLAIN with the owner as authorization identity, which Cyrus
// grants admins).
func (s *session) messageIDs(ctx context.Context, mbox string) (multiset, error) {
	ids, err := s.examineIDs(ctx, mbox)
	var ierr *imap.Error
	owner := ownerOf(mbox)
	if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo || owner == "" || s.login.as != "" {
		return ids, err
	}
	as := s.login
	as.as = owner
	o, oerr := open(ctx, s.addr, as)
	if oerr != nil {
		return nil, fmt.Errorf("%w; as its owner: %w", err, oerr)
	}
	defer o.close()
	defer o.logout(ctx)
	own, err := o.ownName(ctx, mbox, owner)
	if err != nil {
		return nil, err
	}
	return o.examineIDs(ctx, own)
}

// ownName is what the owner calls its mailbox mbox: INBOX for user/brong,
// and user/brong/Sent under the owner's personal namespace (NAMESPACE
// says: "Sent" with Cyrus's altnamespace, "INBOX/Sent" without).
func (s *session) ownName(ctx context.Context, mbox, owner string) (string, error) {
	name, _, _ := strings.Cut(mbox, "@")
	user, _, _ := strings.Cut(owner, "@")
	rest := strings.TrimPrefix(name[len("user/")+len(user):], name[4:5])
	if rest == "" {
		return "INBOX", nil
	}
	var prefix string
	err := s.step(ctx, func() error {
		ns, err := s.cl.Namespace().Wait()
		if err != nil {
			return fmt.Errorf("NAMESPACE: %w", err)
		}
		if len(ns.Personal) > 0 {
			prefix = ns.Personal[0].Prefix
		}
		return nil
	})
	return prefix + rest, err
}

// ownerOf is the user whose mailbox mbox is ("brong" for user/brong/Sent
// or user.brong.Sent, "brong@example.com" for user/brong/Sent@example.com),
// "" for a mailbox of no user.
func ownerOf(mbox string) string {
	name, domain, _ := strings.Cut(mbox, "@")
	if len(name) < 6 || !strings.HasPrefix(name, "user") || (name[4] != '/' && name[4] != '.') {
		return ""
	}
	user, _, _ := strings.Cut(name[5:], name[4:5])
	if user == "" {
		return ""
	}
	if domain != "" {
		user += "@" + domain
	}
	return user
}

// examineIDs is messageIDs in this session.
func (s *session) examineIDs(ctx context.Context, mbox string) (multiset, error) {
	ids := multiset{}
	err := s.step(ctx, func() error {
		sel, err := s.cl.Select(mbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("EXAMINE %s: %w", mbox, err)
		}
		if sel.NumMessages == 0 {
			return nil
		}
		return s.fetchIDs(mbox, ids)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (s *session) fetchIDs(mbox string, ids multiset) error {
	cmd := s.cl.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{idSection}})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		buf, err := msg.Collect()
		if err != nil {
			cmd.Close()
			return fmt.Errorf("FETCH %s: %w", mbox, err)
		}
		ids.add(messageID(buf.FindBodySection(idSection)))
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("FETCH %s: %w", mbox, err)
	}
	return nil
}
