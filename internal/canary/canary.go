// Package canary checks that a store replicates, the way FastMail's
// monitors do: a message appended through the store's floating master
// address to a dedicated mailbox must arrive on every replica within a
// deadline. Check is the gate; Send, Wait and Prune are its steps.
//
// The canary mailbox is by default user/cyrplan-canary (the INBOX of a
// user of its own, with the server's hierarchy separator: user.cyrplan-canary
// without unixhierarchysep), not the INBOX of the login user: the login is
// an admin's, and an admin's own mail should not fill with canaries. It is
// not a shared mailbox either: Cyrus gives shared mailboxes its defaultacl
// ("anyone lrs"), so every user of the store would see it. Cyrus gives an
// admin only "la" on another user's mailbox, so Send grants the login user
// the rights it needs there (lrite) whenever MYRIGHTS says it lacks them;
// the ACL replicates with the mailbox, which lets Wait read it on replicas.
// One consequence: "cyrplan locate cyrplan-canary" finds it on every store.
package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const (
	// DefaultTimeout is how long a canary may take to reach a replica
	// when Config.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// DefaultOwner owns the default canary mailbox, user/<DefaultOwner>.
	DefaultOwner = "cyrplan-canary"
	// Keep is how many canaries Check leaves in the mailbox when it prunes.
	Keep = 10

	idPrefix = "cyrplan-canary-"
	rights   = "lrite" // lookup, read, insert, delete-message, expunge
)

// How often Wait looks on a replica, which bounds the precision of the
// arrival times it reports: a tenth of the time since the canary was sent,
// between minPoll and maxPoll. A canary that arrives in 30ms is seen
// within about 10ms of it, one that takes 10s within 250ms.
var minPoll, maxPoll = 10 * time.Millisecond, 250 * time.Millisecond

func pollAfter(elapsed time.Duration) time.Duration {
	return min(max(elapsed/10, minPoll), maxPoll)
}

// ErrPrune marks Check's error when every replica got the canary but old
// canaries could not be pruned on the master: the gate itself passed.
var ErrPrune = errors.New("canary: pruning old canaries")

// Config says how to reach the canary mailbox. The credentials are an
// admin's (it may have to create the mailbox); they log in with LOGIN over
// plain IMAP.
type Config struct {
	User, Password string
	// Mailbox is the canary mailbox; empty means user/cyrplan-canary
	// with the server's hierarchy separator.
	Mailbox string
	// Timeout bounds each step: how long a canary may take to reach a
	// replica (from its SentAt), and how long sending or pruning may
	// take. Zero means DefaultTimeout.
	Timeout time.Duration
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// Canary is one canary message, as sent.
type Canary struct {
	MessageID string    // "<cyrplan-canary-<random>@cyrplan>"
	Mailbox   string    // the mailbox it was appended to
	SentAt    time.Time // when the master acknowledged the APPEND
}

// NotArrivedError is Wait's error when the canary did not show up.
type NotArrivedError struct {
	Replica, Mailbox, MessageID string
	Waited                      time.Duration // from SentAt to giving up
	Looks                       int           // searches that ran and found nothing
	Last                        error         // the last failure to look, if the last attempt failed
	Cause                       error         // why Wait stopped: the deadline or the caller's context
}

func (e *NotArrivedError) Error() string {
	last := "not there"
	if e.Last != nil {
		last = e.Last.Error()
	}
	why := ""
	if !errors.Is(e.Cause, context.DeadlineExceeded) {
		why = fmt.Sprintf(" (stopped: %v)", e.Cause)
	}
	return fmt.Sprintf("canary %s did not reach replica %s (mailbox %s) within %s of being sent%s; %d looks, last: %s",
		e.MessageID, e.Replica, e.Mailbox, e.Waited.Round(time.Millisecond), why, e.Looks, last)
}

func (e *NotArrivedError) Unwrap() error { return e.Cause }

// Check is the gate: it sends a canary through master (the store's
// floating master address, host:port) and waits for it on every replica
// at once. It returns the arrival time of each replica that got it (from
// the master's acknowledgement to the first look that found it, see
// minPoll) and, if any did not, an error naming each of them. After
// a check every replica passed, it prunes the master's canaries down to
// the newest Keep (the expunges replicate); a pruning failure is returned
// wrapped in ErrPrune with every duration present.
func Check(ctx context.Context, master string, replicas []string, c Config) (map[string]time.Duration, error) {
	k, err := Send(ctx, master, c)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		arrived = make(map[string]time.Duration, len(replicas))
		errs    = make([]error, len(replicas))
	)
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Wait(ctx, r, c, k)
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			arrived[r] = d
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return arrived, err
	}
	if _, err := Prune(ctx, master, c, Keep); err != nil {
		return arrived, fmt.Errorf("%w on %s: %v", ErrPrune, master, err)
	}
	return arrived, nil
}

// Send logs in at masterAddr, makes sure the canary mailbox exists and
// the login may use it, and appends a new canary to it.
func Send(ctx context.Context, masterAddr string, c Config) (Canary, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	s, err := login(ctx, masterAddr, c)
	if err != nil {
		return Canary{}, fmt.Errorf("canary: master %s: %w", masterAddr, err)
	}
	defer s.close()
	k, err := s.send(c)
	if err != nil {
		return Canary{}, fmt.Errorf("canary: master %s: %w", masterAddr, s.why(err))
	}
	s.logout()
	return k, nil
}

func (s *session) send(c Config) (Canary, error) {
	mbox, err := s.mailbox(c)
	if err != nil {
		return Canary{}, err
	}
	if err := s.ensure(mbox, c.User); err != nil {
		return Canary{}, err
	}
	id, err := newMessageID()
	if err != nil {
		return Canary{}, err
	}
	now := time.Now()
	msg := compose(id, now)
	cmd := s.cl.Append(mbox, int64(len(msg)), &imap.AppendOptions{Time: now})
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return Canary{}, fmt.Errorf("APPEND to %s: %w", mbox, err)
	}
	if err := cmd.Close(); err != nil {
		return Canary{}, fmt.Errorf("APPEND to %s: %w", mbox, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return Canary{}, fmt.Errorf("APPEND to %s: %w", mbox, err)
	}
	return Canary{MessageID: id, Mailbox: mbox, SentAt: time.Now()}, nil
}

// Wait looks for k on replicaAddr over and over (see minPoll), read-only, until it
// is there, ctx ends or the Config's timeout has passed since k.SentAt. It
// returns how long after SentAt it found it; a canary that does not arrive
// is a *NotArrivedError.
func Wait(ctx context.Context, replicaAddr string, c Config, k Canary) (time.Duration, error) {
	ctx, cancel := context.WithDeadline(ctx, k.SentAt.Add(c.timeout()))
	defer cancel()
	mbox := k.Mailbox
	if mbox == "" {
		mbox = c.Mailbox
	}
	var (
		s     *session
		looks int
		last  error
	)
	defer func() {
		if s != nil {
			s.close()
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, &NotArrivedError{Replica: replicaAddr, Mailbox: mbox, MessageID: k.MessageID,
				Waited: time.Since(k.SentAt), Looks: looks, Last: last, Cause: context.Cause(ctx)}
		case <-timer.C:
		}
		found, err := func() (bool, error) {
			if s == nil {
				var err error
				if s, err = login(ctx, replicaAddr, c); err != nil {
					return false, err
				}
			}
			if mbox == "" {
				m, err := s.mailbox(c)
				if err != nil {
					return false, err
				}
				mbox = m
			}
			return s.has(mbox, k.MessageID)
		}()
		if found {
			d := time.Since(k.SentAt)
			s.logout()
			return d, nil
		}
		switch {
		case err == nil:
			looks++
			last = nil
		case ctx.Err() == nil: // not a failure of our own making
			last = err
		}
		var ie *imap.Error
		if err != nil && s != nil && !errors.As(err, &ie) {
			// The connection broke: dial again next time.
			s.close()
			s = nil
		}
		timer.Reset(pollAfter(time.Since(k.SentAt)))
	}
}

// has says whether mbox holds the message with Message-Id id. It
// re-examines mbox on every call, so what it sees is current.
func (s *session) has(mbox, id string) (bool, error) {
	if _, err := s.cl.Select(mbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return false, fmt.Errorf("EXAMINE %s: %w", mbox, err)
	}
	data, err := s.cl.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-Id", Value: id}}}, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("SEARCH %s: %w", mbox, err)
	}
	return len(data.AllUIDs()) > 0, nil
}

// Prune deletes all but the newest keep canaries (by UID, that is by
// APPEND) from the canary mailbox on addr, the master, and says how many
// it deleted. Only messages with a canary Message-Id are touched. With
// Cyrus's default expunge_mode: delayed they stay in the spool, flagged
// expunged, until cyr_expire -X purges them.
func Prune(ctx context.Context, addr string, c Config, keep int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	s, err := login(ctx, addr, c)
	if err != nil {
		return 0, err
	}
	defer s.close()
	n, err := s.prune(c, keep)
	if err != nil {
		return n, s.why(err)
	}
	s.logout()
	return n, nil
}

func (s *session) prune(c Config, keep int) (int, error) {
	mbox, err := s.mailbox(c)
	if err != nil {
		return 0, err
	}
	if _, err := s.cl.Select(mbox, nil).Wait(); err != nil {
		return 0, fmt.Errorf("SELECT %s: %w", mbox, err)
	}
	data, err := s.cl.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-Id", Value: "<" + idPrefix}}}, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("SEARCH %s: %w", mbox, err)
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	keep = max(keep, 0)
	if len(uids) <= keep {
		return 0, nil
	}
	old := imap.UIDSetNum(uids[:len(uids)-keep]...)
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := s.cl.Store(old, store, nil).Close(); err != nil {
		return 0, fmt.Errorf("STORE \\Deleted in %s: %w", mbox, err)
	}
	// UID EXPUNGE removes exactly those; a plain EXPUNGE would also take
	// any other message flagged \Deleted in the (dedicated) mailbox.
	var exp *imapclient.ExpungeCommand
	if caps := s.cl.Caps(); caps.Has(imap.CapUIDPlus) || caps.Has(imap.CapIMAP4rev2) {
		exp = s.cl.UIDExpunge(old)
	} else {
		exp = s.cl.Expunge()
	}
	if err := exp.Close(); err != nil {
		return 0, fmt.Errorf("EXPUNGE in %s: %w", mbox, err)
	}
	return len(uids) - keep, nil
}

// session is one logged-in connection, closed when its context ends.
type session struct {
	ctx  context.Context
	cl   *imapclient.Client
	stop func() bool
}

func login(ctx context.Context, addr string, c Config) (*session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := imapclient.New(conn, nil)
	s := &session{ctx: ctx, cl: cl, stop: context.AfterFunc(ctx, func() { cl.Close() })}
	if err := cl.WaitGreeting(); err != nil {
		s.close()
		return nil, s.why(fmt.Errorf("greeting: %w", err))
	}
	if err := cl.Login(c.User, c.Password).Wait(); err != nil {
		s.close()
		return nil, s.why(fmt.Errorf("LOGIN as %s: %w", c.User, err))
	}
	return s, nil
}

// why puts the context's end first when it is what broke a command.
func (s *session) why(err error) error {
	if cause := context.Cause(s.ctx); cause != nil {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

func (s *session) logout() {
	if s.ctx.Err() == nil {
		s.cl.Logout().Wait()
	}
}

func (s *session) close() {
	s.stop()
	s.cl.Close()
}

// mailbox is c.Mailbox, or user/cyrplan-canary with the server's
// hierarchy separator (LIST "" "" reports it).
func (s *session) mailbox(c Config) (string, error) {
	if c.Mailbox != "" {
		return c.Mailbox, nil
	}
	list, err := s.cl.List("", "", nil).Collect()
	if err != nil {
		return "", fmt.Errorf(`LIST "" "": %w`, err)
	}
	delim := '/'
	if len(list) > 0 && list[0].Delim != 0 {
		delim = list[0].Delim
	}
	return "user" + string(delim) + DefaultOwner, nil
}

// ensure creates mbox unless it exists and, on a server with ACLs, grants
// user the rights the canary needs there when it lacks them.
func (s *session) ensure(mbox, user string) error {
	if err := s.cl.Create(mbox, nil).Wait(); err != nil && !alreadyExists(err) {
		return fmt.Errorf("CREATE %s: %w", mbox, err)
	}
	if !s.cl.Caps().Has(imap.CapACL) {
		return nil
	}
	mine, err := s.cl.MyRights(mbox).Wait()
	if err != nil {
		return fmt.Errorf("MYRIGHTS %s: %w", mbox, err)
	}
	if missing := imap.RightSet(rights).Remove(mine.Rights); len(missing) > 0 {
		if err := s.cl.SetACL(mbox, imap.RightsIdentifier(user), imap.RightModificationAdd, missing).Wait(); err != nil {
			return fmt.Errorf("SETACL %s %s +%s (it has %q): %w", mbox, user, missing, mine.Rights, err)
		}
	}
	return nil
}

// alreadyExists recognises CREATE's answer for an existing mailbox: the
// ALREADYEXISTS code (RFC 5530) or, from servers that send no code (Cyrus
// 3.6 says "NO Mailbox already exists"), its text.
func alreadyExists(err error) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return false
	}
	return ie.Code == imap.ResponseCodeAlreadyExists || strings.Contains(strings.ToLower(ie.Text), "already exists")
}

func newMessageID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "<" + idPrefix + hex.EncodeToString(b[:]) + "@cyrplan>", nil
}

// compose is the canary message: small, plain and clearly labelled.
func compose(id string, at time.Time) []byte {
	return []byte("Date: " + at.Format(time.RFC1123Z) + "\r\n" +
		"From: cyrplan canary <" + DefaultOwner + "@cyrplan>\r\n" +
		"To: <" + DefaultOwner + "@cyrplan>\r\n" +
		"Subject: cyrplan replication canary\r\n" +
		"Message-Id: " + id + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"A canary of cyrplan's replication check, sent " + at.UTC().Format(time.RFC3339Nano) + ".\r\n" +
		"It is safe to delete; cyrplan prunes old ones itself.\r\n")
}
