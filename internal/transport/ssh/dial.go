// Package ssh implements transport.Host over SSH: files move over SFTP
// (as served by OpenSSH) and commands run in SSH sessions. Host keys are
// checked strictly against a known_hosts file.
package ssh

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config says how to reach one host.
type Config struct {
	Name    string // the host's name in the layout (imap6); Address if empty
	Address string // IP address or DNS name to connect to
	Port    int    // default 22
	User    string // default root

	// KnownHostsFile is the known_hosts file the host key must be in.
	// It is required: there is no trust on first use.
	KnownHostsFile string

	// IdentityFile is an unencrypted private key file. If empty, the
	// keys of the ssh-agent at $SSH_AUTH_SOCK are used.
	IdentityFile string

	// ConnectTimeout bounds connecting, the SSH handshake,
	// authentication and starting SFTP together. Default 10s.
	ConnectTimeout time.Duration

	// CommandTimeout bounds each Run, unless its context ends earlier.
	// Default 5m.
	CommandTimeout time.Duration

	// RequestTimeout bounds each file operation (its SFTP requests); a
	// host that does not answer by then has its connection closed.
	// Default 60s.
	RequestTimeout time.Duration

	// KeepAlive is how often an idle connection is probed; a host that
	// does not answer two probes in a row is dropped. Default 15s.
	KeepAlive time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultPort           = 22
	DefaultUser           = "root"
	DefaultConnectTimeout = 10 * time.Second
	DefaultCommandTimeout = 5 * time.Minute
	DefaultRequestTimeout = 60 * time.Second
	DefaultKeepAlive      = 15 * time.Second
)

// maxSessions is how many commands a Host runs at once. OpenSSH allows
// 10 sessions per connection (MaxSessions) and SFTP takes one.
const maxSessions = 8

// Host is a connected host: one SSH connection and one SFTP session on
// it, both shared by all callers. It is safe for concurrent use.
//
// SFTP requests do not take a context: each file operation has a
// deadline (RequestTimeout) and ends with ctx, and when either passes
// while it waits, the connection is closed: a host that hangs fails,
// it never stalls cyrplan.
type Host struct {
	cfg      Config
	where    string // "imap6 (10.200.0.12)", the prefix of every error
	client   *gossh.Client
	sessions chan struct{} // a token per running command

	sftpOnce sync.Once
	sftp     *sftp.Client // once startSFTP succeeded
	sftpErr  error

	idsMu sync.Mutex
	ids   *ids // user and group ids, read once; see owner.go

	done   chan struct{} // closed by Close: stops the keepalive
	closed sync.Once
	dead   atomic.Pointer[error] // why the connection was closed under a caller
}

// Dial connects to the host described by cfg, checks its host key,
// and authenticates; SFTP starts with the first file operation.
func Dial(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Address
	}
	addr := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
	where := cfg.Address
	if cfg.Port != DefaultPort {
		where = addr
	}
	h := &Host{cfg: cfg, where: cfg.Name + " (" + where + ")", sessions: make(chan struct{}, maxSessions), done: make(chan struct{})}
	if err := h.dial(ctx, addr); err != nil {
		return nil, fmt.Errorf("%s: %w", h.where, err)
	}
	go h.keepAlive()
	return h, nil
}

// keepAlive probes the connection every KeepAlive; a host that leaves
// two probes in a row unanswered has its connection closed.
func (h *Host) keepAlive() {
	t := time.NewTicker(h.cfg.KeepAlive)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := h.client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-h.done:
			return
		case err := <-answered:
			if err != nil {
				h.abort(fmt.Errorf("the connection was lost: %w", err))
				return
			}
			missed = 0
		case <-time.After(h.cfg.KeepAlive):
			if missed++; missed >= 2 {
				h.abort(fmt.Errorf("no answer to two keepalives %v apart: connection closed", h.cfg.KeepAlive))
				return
			}
		}
	}
}

// abort closes the connection under every caller, recording why.
func (h *Host) abort(why error) {
	h.dead.CompareAndSwap(nil, &why)
	h.client.Close()
}

// request bounds one file operation by ctx and RequestTimeout: when
// either ends first, the connection is closed (and fail says why). The
// returned func ends the guard.
func (h *Host) request(ctx context.Context) func() {
	ctx, cancel := context.WithTimeoutCause(ctx, h.cfg.RequestTimeout,
		fmt.Errorf("no answer within %v: connection closed", h.cfg.RequestTimeout))
	stop := context.AfterFunc(ctx, func() { h.abort(context.Cause(ctx)) })
	return func() {
		stop()
		cancel()
	}
}

// dial connects h to addr.
func (h *Host) dial(ctx context.Context, addr string) error {
	if h.cfg.Address == "" {
		return errors.New("no address to connect to")
	}
	if h.cfg.KnownHostsFile == "" {
		return errors.New("no known_hosts file given; host keys must be checked")
	}
	known, err := knownhosts.New(h.cfg.KnownHostsFile)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	auth, agentConn, err := h.auth()
	if err != nil {
		return err
	}
	if agentConn != nil {
		defer agentConn.Close() // only needed to authenticate
	}
	var keyErr error // a refused host key, reported instead of the handshake error
	config := &gossh.ClientConfig{
		User: h.cfg.User,
		Auth: []gossh.AuthMethod{auth},
		HostKeyCallback: func(hostname string, remote net.Addr, key gossh.PublicKey) error {
			keyErr = h.checkHostKey(known, hostname, remote, key)
			return keyErr
		},
		HostKeyAlgorithms: knownAlgorithms(known, addr),
	}

	ctx, cancel := context.WithTimeoutCause(ctx, h.cfg.ConnectTimeout,
		fmt.Errorf("no connection within %v: %w", h.cfg.ConnectTimeout, context.DeadlineExceeded))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	// Closing the connection is the only way to stop a handshake.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := gossh.NewClientConn(withQuickAck(conn), addr, config)
	if err != nil {
		conn.Close()
		switch {
		case keyErr != nil:
			return keyErr
		case ctx.Err() != nil:
			return context.Cause(ctx)
		}
		return fmt.Errorf("ssh handshake as %s: %w", h.cfg.User, err)
	}
	h.client = gossh.NewClient(c, chans, reqs)
	if !stop() {
		h.client.Close()
		return context.Cause(ctx)
	}
	return nil
}

// startSFTP starts the SFTP session on first use, within the request
// that needs it: a host the observe command answers for a plan needs
// none, and no sftp-server starts there.
func (h *Host) startSFTP() error {
	h.sftpOnce.Do(func() {
		c, err := sftp.NewClient(h.client, sftp.UseFstat(true))
		if err != nil {
			h.sftpErr = fmt.Errorf("start sftp: %w", err)
			return
		}
		h.sftp = c
	})
	return h.sftpErr
}

// auth returns how to authenticate: with the identity file if set, else
// with the ssh-agent. The agent connection, if any, is returned to be
// closed once authenticated.
func (h *Host) auth() (gossh.AuthMethod, io.Closer, error) {
	if f := h.cfg.IdentityFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("identity file: %w", err)
		}
		signer, err := gossh.ParsePrivateKey(pem)
		var missing *gossh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, nil, fmt.Errorf("identity file %s is encrypted: add it to ssh-agent and give no identity file", f)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("identity file %s: %w", f, err)
		}
		return gossh.PublicKeys(signer), nil, nil
	}
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("no SSH key: give an identity file or start ssh-agent (SSH_AUTH_SOCK is not set)")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-agent: %w", err)
	}
	return gossh.PublicKeysCallback(agent.NewClient(conn).Signers), conn, nil
}

// checkHostKey accepts key only if the known_hosts file lists it for
// hostname, and otherwise says what the user should check and do.
func (h *Host) checkHostKey(known gossh.HostKeyCallback, hostname string, remote net.Addr, key gossh.PublicKey) error {
	err := known(hostname, remote, key)
	offered := key.Type() + " " + gossh.FingerprintSHA256(key)
	file := h.cfg.KnownHostsFile
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return &hostKeyError{err, fmt.Sprintf("unknown host key %s: %s is not in %s; check the fingerprint with the host's administrator, then add the key to that file (ssh-keyscan -p %d %s prints it)",
			offered, knownhosts.Normalize(hostname), file, h.cfg.Port, h.cfg.Address)}
	case errors.As(err, &ke):
		var have []string
		for _, k := range ke.Want {
			have = append(have, fmt.Sprintf("%s:%d has %s %s", k.Filename, k.Line, k.Key.Type(), gossh.FingerprintSHA256(k.Key)))
		}
		return &hostKeyError{err, fmt.Sprintf("HOST KEY CHANGED: the host offers %s, but %s; someone may be intercepting the connection, or the host was reinstalled: find out which before you replace the key in %s",
			offered, strings.Join(have, ", "), file)}
	case errors.As(err, &re):
		return &hostKeyError{err, fmt.Sprintf("host key %s is revoked in %s:%d", offered, re.Revoked.Filename, re.Revoked.Line)}
	}
	return err
}

// hostKeyError is a refused host key. It unwraps to the knownhosts
// error and says what to do about it.
type hostKeyError struct {
	err error
	msg string
}

func (e *hostKeyError) Error() string { return e.msg }
func (e *hostKeyError) Unwrap() error { return e.err }

// probeKey is a key no known_hosts file lists. (NewPublicKey cannot
// fail for an ed25519 key of the right size.)
var probeKey, _ = gossh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

// knownAlgorithms returns the host key algorithms to ask addr for: those
// of the keys known_hosts lists for it, or nil (the default) if none.
// Without this, a file with only the ed25519 key of a host that also has
// an ECDSA key looks like a changed key, as x/crypto/ssh prefers ECDSA.
func knownAlgorithms(known gossh.HostKeyCallback, addr string) []string {
	var ke *knownhosts.KeyError
	if !errors.As(known(addr, &net.TCPAddr{}, probeKey), &ke) {
		return nil
	}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !slices.Contains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		if t := k.Key.Type(); t == gossh.KeyAlgoRSA {
			add(gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algos
}
