package transporttest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// CommandLog is where a Server appends the commands it is asked to run,
// relative to its root.
const CommandLog = ".cyrplan-test/commands.log"

// Server is an SSH server on a loopback address (127.0.0.1 unless
// WithListenAddr says otherwise) for tests. It accepts one client key,
// serves a directory over SFTP as if it were "/" and, by default, only
// logs the commands it is asked to run.
type Server struct {
	Addr          string          // host:port
	Port          int             // the port of Addr
	HostKey       gossh.PublicKey // the server's ed25519 host key
	ClientKeyFile string          // the unencrypted private key the server accepts; "" with WithClientKey
	Root          string          // the directory served as "/"

	t          testing.TB // nil for a server made by Start
	root       *os.Root
	exec       ExecFunc
	listenAddr string // host or host:port to listen on
	hostSigner gossh.Signer
	clientKey  gossh.PublicKey
	mu         sync.Mutex // guards codes and the command log
	codes      []exitCode

	stalled atomic.Bool // SFTP requests hang while set (see Stall)

	srvMu sync.Mutex // guards srv and l
	srv   *gliderssh.Server
	l     net.Listener // nil while stopped
}

// An ExecFunc runs cmd for a session and returns its exit status. ctx
// ends when the client sends a signal or disconnects.
type ExecFunc func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int

// An Option changes how a Server runs commands.
type Option func(*Server)

// WithExec makes the server run each command with f, after logging it.
func WithExec(f ExecFunc) Option {
	return func(s *Server) { s.exec = f }
}

// WithListenAddr makes the server listen on addr, an IP address (the
// port is then chosen by the system) or host:port, instead of
// 127.0.0.1. Any address of 127.0.0.0/8 is a loopback address on Linux,
// so tests can give each simulated host an address of its own.
func WithListenAddr(addr string) Option {
	return func(s *Server) { s.listenAddr = addr }
}

// WithClientKey makes the server accept the client key pub (of which
// the caller has the private key) instead of a key of its own making.
// ClientKeyFile is then empty.
func WithClientKey(pub gossh.PublicKey) Option {
	return func(s *Server) { s.clientKey, s.ClientKeyFile = pub, "" }
}

// WithShell makes the server run each command with /bin/sh -c, in its
// root directory. Note that the command sees this machine's file system:
// unlike SFTP paths, the paths in commands are not under the root.
func WithShell() Option {
	return func(s *Server) {
		s.exec = func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
			c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
			c.Dir = s.Root
			c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
			err := c.Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
				return 0
			case errors.As(err, &ee) && ee.ExitCode() >= 0:
				return ee.ExitCode()
			}
			fmt.Fprintln(stderr, err)
			return 255
		}
	}
}

type exitCode struct {
	substr string
	code   int
}

// NewServer starts a server for the directory root, created if missing,
// and stops it when the test ends.
func NewServer(t testing.TB, root string, opts ...Option) *Server {
	t.Helper()
	clientKey, clientFile := NewKeyFile(t)
	opts = append([]Option{func(s *Server) { s.clientKey, s.ClientKeyFile = clientKey, clientFile }}, opts...)
	s, err := Start(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(s.Close)
	return s
}

// Start starts a server for the directory root, created if missing,
// for callers without a testing.TB (a testscript command): it needs
// WithClientKey, and the caller calls Close.
func Start(root string, opts ...Option) (*Server, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostSigner, err := gossh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	s := &Server{HostKey: hostSigner.PublicKey(), Root: root, hostSigner: hostSigner, listenAddr: "127.0.0.1"}
	for _, o := range opts {
		o(s)
	}
	if s.clientKey == nil {
		return nil, errors.New("transporttest: no client key: use WithClientKey")
	}
	addr := s.listenAddr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "0")
	}
	if s.root, err = os.OpenRoot(root); err != nil {
		return nil, err
	}
	if err := s.listen(addr); err != nil {
		s.root.Close()
		return nil, err
	}
	return s, nil
}

// listen serves SSH on addr with a new gliderssh server and sets Addr
// and Port.
func (s *Server) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &gliderssh.Server{
		HostSigners: []gliderssh.Signer{s.hostSigner},
		Handler:     s.handleExec,
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(key, s.clientKey)
		},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{"sftp": s.handleSFTP},
	}
	s.srvMu.Lock()
	s.srv, s.l = srv, l
	s.srvMu.Unlock()
	s.Addr = l.Addr().String()
	s.Port = l.Addr().(*net.TCPAddr).Port
	go srv.Serve(l)
	return nil
}

// Stop takes the server off the network, as if its host went down:
// the listener and every connection are closed, and connecting is
// refused until Restart.
func (s *Server) Stop() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.l == nil {
		return
	}
	s.srv.Close()
	s.l.Close() // Serve may not have registered it yet
	s.l = nil
}

// Restart brings a stopped server back on the same address and port,
// with the same host key, client key, root and exit codes.
func (s *Server) Restart() error {
	s.srvMu.Lock()
	running := s.l != nil
	s.srvMu.Unlock()
	if running {
		return nil
	}
	return s.listen(s.Addr)
}

// NewKeyFile writes a new unencrypted ed25519 private key to a file in
// t.TempDir() and returns its public key and the file's path.
func NewKeyFile(t testing.TB) (gossh.PublicKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, file
}

// Close stops the server for good. NewServer arranges for it to be
// called.
func (s *Server) Close() {
	s.Stop()
	s.root.Close()
}

// KnownHostsLine returns the known_hosts line for the server under the
// name or address host.
func (s *Server) KnownHostsLine(host string) string {
	return knownhosts.Line([]string{net.JoinHostPort(host, strconv.Itoa(s.Port))}, s.HostKey)
}

// WriteKnownHosts appends KnownHostsLine(host) to the file path, so that
// the servers of one test can share a file. Only for servers made by
// NewServer: it fails the test on error.
func (s *Server) WriteKnownHosts(path, host string) {
	s.t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		_, err = fmt.Fprintln(f, s.KnownHostsLine(host))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// SetExitCode makes commands that contain substr exit with code instead
// of running (they are still logged). The rule set last wins.
func (s *Server) SetExitCode(substr string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = append(s.codes, exitCode{substr, code})
}

// Commands returns the commands run so far, one per line of CommandLog.
// Only for servers made by NewServer: it fails the test on error.
func (s *Server) Commands() []string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.root.ReadFile(CommandLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// handleExec logs a command and runs it: with a code set by SetExitCode,
// with the ExecFunc of WithExec or WithShell, or not at all (exit 0).
func (s *Server) handleExec(sess gliderssh.Session) {
	cmd := sess.RawCommand()
	code, found, err := s.logCommand(cmd)
	if err != nil {
		fmt.Fprintln(sess.Stderr(), err)
		code = 255
	} else if !found && s.exec != nil {
		// Any signal ends the command. The channel is drained until it
		// is unregistered, as the session blocks sending to it.
		ctx, cancel := context.WithCancel(sess.Context())
		signals, done := make(chan gliderssh.Signal), make(chan struct{})
		sess.Signals(signals)
		go func() {
			for {
				select {
				case <-signals:
					cancel()
				case <-done:
					return
				}
			}
		}()
		code = s.exec(ctx, cmd, sess, sess, sess.Stderr())
		sess.Signals(nil)
		close(done)
		cancel()
	}
	io.Copy(io.Discard, sess) // the client closes stdin before it waits for the status
	sess.Exit(code)
}

// logCommand appends cmd to the command log and returns the exit code
// set for it, if any.
func (s *Server) logCommand(cmd string) (code int, found bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.root.MkdirAll(filepath.Dir(CommandLog), 0o755); err != nil {
		return 0, false, err
	}
	f, err := s.root.OpenFile(CommandLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, false, err
	}
	_, err = fmt.Fprintln(f, cmd)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	for i := len(s.codes) - 1; i >= 0; i-- {
		if strings.Contains(cmd, s.codes[i].substr) {
			return s.codes[i].code, true, err
		}
	}
	return 0, false, err
}

// Stall makes every SFTP request hang (a host that stopped answering
// but keeps its connections open) until Stall(false).
func (s *Server) Stall(on bool) { s.stalled.Store(on) }

// handleSFTP serves the root over SFTP.
func (s *Server) handleSFTP(sess gliderssh.Session) {
	h := &fsHandler{root: s.root, gate: func() {
		for s.stalled.Load() {
			time.Sleep(10 * time.Millisecond)
		}
	}}
	srv := sftp.NewRequestServer(sess, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	srv.Serve()
	srv.Close()
}
