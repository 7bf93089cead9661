package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/ssh"
	"github.com/cyrplan/cyrplan/internal/transport/transporttest"
)

// config returns a Config that reaches srv as host imap6.
func config(t *testing.T, srv *transporttest.Server) ssh.Config {
	known := filepath.Join(t.TempDir(), "known_hosts")
	srv.WriteKnownHosts(known, "127.0.0.1")
	return ssh.Config{
		Name:           "imap6",
		Address:        "127.0.0.1",
		Port:           srv.Port,
		KnownHostsFile: known,
		IdentityFile:   srv.ClientKeyFile,
	}
}

// dial connects with cfg and closes the Host when the test ends.
func dial(t *testing.T, cfg ssh.Config) *ssh.Host {
	t.Helper()
	h, err := ssh.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) transporttest.Fixture {
		root := t.TempDir()
		dir := filepath.Join(root, "work")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		srv := transporttest.NewServer(t, root, transporttest.WithShell())
		return transporttest.Fixture{Host: dial(t, config(t, srv)), Dir: "/work", LocalDir: dir}
	})
}

func TestUnknownHostKey(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	if err := os.WriteFile(cfg.KnownHostsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ssh.Dial(t.Context(), cfg)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) != 0 {
		t.Fatalf("Dial = %v; want an unknown host key", err)
	}
	for _, want := range []string{"imap6 (" + srv.Addr + ")", gossh.FingerprintSHA256(srv.HostKey), cfg.KnownHostsFile, "add the key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestChangedHostKey(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	oldKey, _ := transporttest.NewKeyFile(t)
	line := knownhosts.Line([]string{srv.Addr}, oldKey) + "\n"
	if err := os.WriteFile(cfg.KnownHostsFile, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ssh.Dial(t.Context(), cfg)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) != 1 {
		t.Fatalf("Dial = %v; want a host key mismatch", err)
	}
	for _, want := range []string{"imap6 (" + srv.Addr + ")", "CHANGED", gossh.FingerprintSHA256(srv.HostKey), gossh.FingerprintSHA256(oldKey), cfg.KnownHostsFile + ":1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestNoKnownHosts(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	cfg.KnownHostsFile = ""
	if _, err := ssh.Dial(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Errorf("Dial without known_hosts = %v; want an error about it", err)
	}
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "missing")
	if _, err := ssh.Dial(t.Context(), cfg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dial with a missing known_hosts = %v; want fs.ErrNotExist", err)
	}
}

func TestWrongClientKey(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	_, cfg.IdentityFile = transporttest.NewKeyFile(t)
	_, err := ssh.Dial(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "imap6") || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("Dial with a wrong key = %v; want an authentication error naming the host", err)
	}
}

func TestAgent(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	cfg.IdentityFile = ""

	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := ssh.Dial(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("Dial without a key = %v; want an error about SSH_AUTH_SOCK", err)
	}

	// An agent holding the client key. The socket path must be short.
	pem, err := os.ReadFile(srv.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := gossh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				agent.ServeAgent(keyring, c)
				c.Close()
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	h := dial(t, cfg)
	if err := h.Run(t.Context(), "true", nil, nil, nil); err != nil {
		t.Error(err)
	}
}

func TestConnectRefused(t *testing.T) {
	// A port that was just free is very likely closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	cfg.Port = port
	start := time.Now()
	_, err = ssh.Dial(t.Context(), cfg)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "imap6 (127.0.0.1:") {
		t.Errorf("Dial to a closed port = %v; want connection refused, naming the host", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial to a closed port took %v", d)
	}
}

func TestConnectTimeout(t *testing.T) {
	// A server that accepts connections and never says anything.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	srv := transporttest.NewServer(t, t.TempDir())
	cfg := config(t, srv)
	cfg.Port = l.Addr().(*net.TCPAddr).Port
	cfg.ConnectTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err = ssh.Dial(t.Context(), cfg)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no connection within 200ms") {
		t.Errorf("Dial to a silent server = %v; want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial gave up after %v; want 200ms", d)
	}
}

func TestRunExitCodes(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	srv.SetExitCode("cyrus-slot1", 3)
	srv.SetExitCode("cyrus-slot1 stop", 0)
	h := dial(t, config(t, srv))
	ctx := t.Context()
	var ee *transport.ExitError
	if err := h.Run(ctx, "/etc/init.d/cyrus-slot1 start", nil, nil, nil); !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("start = %v; want exit status 3", err)
	}
	if err := h.Run(ctx, "/etc/init.d/cyrus-slot1 stop", nil, nil, nil); err != nil {
		t.Errorf("stop = %v; want nil (the later rule wins)", err)
	}
	if err := h.Run(ctx, "true", nil, nil, nil); err != nil {
		t.Errorf("true = %v", err)
	}
	want := []string{"/etc/init.d/cyrus-slot1 start", "/etc/init.d/cyrus-slot1 stop", "true"}
	if got := srv.Commands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands log = %q; want %q", got, want)
	}
}

func TestRunExec(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir(), transporttest.WithExec(
		func(_ context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
			in, _ := io.ReadAll(stdin)
			io.WriteString(stdout, "ran "+cmd+" with "+string(in))
			io.WriteString(stderr, "err")
			return 7
		}))
	h := dial(t, config(t, srv))
	var stdout, stderr bytes.Buffer
	err := h.Run(t.Context(), "x", strings.NewReader("input"), &stdout, &stderr)
	var ee *transport.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("Run = %v; want exit status 7", err)
	}
	if stdout.String() != "ran x with input" || stderr.String() != "err" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestRunTimeout(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir(), transporttest.WithShell())
	cfg := config(t, srv)
	cfg.CommandTimeout = 300 * time.Millisecond
	h := dial(t, cfg)

	start := time.Now()
	err := h.Run(t.Context(), "sleep 10", nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") || !strings.Contains(err.Error(), "imap6") {
		t.Errorf("Run past CommandTimeout = %v; want a timeout naming the host", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run past CommandTimeout returned after %v", d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if err := h.Run(ctx, "sleep 10", nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Run = %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("canceled Run returned after %v", d)
	}

	// The connection still works.
	if err := h.Run(t.Context(), "true", nil, nil, nil); err != nil {
		t.Error(err)
	}
}

// A command that exits without reading all its input succeeds: the
// input that could not be written is not an error (the observe command
// reads the credentials only when the host has a key).
func TestRunUnreadInput(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir(), transporttest.WithShell())
	h := dial(t, config(t, srv))
	input := strings.Repeat("x", 4<<20)
	for range 5 {
		if err := h.Run(t.Context(), "true", strings.NewReader(input), nil, nil); err != nil {
			t.Fatalf("a command that reads none of its input: %v", err)
		}
	}
	var out strings.Builder
	if err := h.Run(t.Context(), "head -c 3", strings.NewReader("abcdef"), &out, nil); err != nil || out.String() != "abc" {
		t.Errorf("a command that reads some of it: %q, %v", out.String(), err)
	}
}

// TestOwner checks that owner names are looked up in the host's
// /etc/passwd and /etc/group. The server changes owners only when the
// test runs as root; otherwise only the lookups are checked.
func TestOwner(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/bash\n# comment\n\ncyrus:x:104:8:Cyrus:/var/spool/cyrus:/bin/sh\n")
	writeFile(t, filepath.Join(root, "etc", "group"), "root:x:0:\nmail:x:8:\nbroken\n")
	srv := transporttest.NewServer(t, root)
	h := dial(t, config(t, srv))
	ctx := t.Context()
	asRoot := os.Geteuid() == 0
	checkOwner := func(p string, uid, gid uint32) {
		t.Helper()
		if !asRoot {
			return
		}
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s is owned by %d:%d; want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}

	if err := h.MkdirAll(ctx, "/etc/cyrus", 0o750, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	checkOwner("etc/cyrus", 104, 8)
	if err := transport.WriteFile(ctx, h, "/etc/cyrus/imapd.conf", []byte("x"), 0o640, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	checkOwner("etc/cyrus/imapd.conf", 104, 8)
	if err := transport.WriteFile(ctx, h, "/etc/cyrus/user", []byte("x"), 0o640, transport.Owner{User: "cyrus"}); err != nil {
		t.Fatal(err)
	}
	checkOwner("etc/cyrus/user", 104, 0)
	if err := transport.WriteFile(ctx, h, "/etc/cyrus/group", []byte("x"), 0o640, transport.Owner{Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	checkOwner("etc/cyrus/group", 0, 8)

	for _, o := range []transport.Owner{{User: "nobody", Group: "mail"}, {User: "cyrus", Group: "nogroup"}} {
		err := transport.WriteFile(ctx, h, "/etc/cyrus/bad", []byte("x"), 0o640, o)
		if err == nil || !strings.Contains(err.Error(), "imap6") || !strings.Contains(err.Error(), `"no`) {
			t.Errorf("WriteFile with owner %+v = %v; want an unknown name error naming the host", o, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "etc", "cyrus"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("etc/cyrus holds %d files; want 3 (no temporary files, no bad)", len(entries))
	}

	// The names were read once and are kept.
	if err := os.Remove(filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFile(ctx, h, "/etc/cyrus/imapd.conf", []byte("y"), 0o640, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Errorf("a second lookup read /etc/passwd again: %v", err)
	}
}

// TestNoPasswd checks the error when the host has no /etc/passwd.
func TestNoPasswd(t *testing.T) {
	srv := transporttest.NewServer(t, t.TempDir())
	h := dial(t, config(t, srv))
	err := transport.WriteFile(t.Context(), h, "/x", []byte("x"), 0o644, transport.Owner{User: "cyrus"})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("WriteFile = %v; want an error about /etc/passwd", err)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServerRoot checks that the test server keeps SFTP inside its root.
func TestServerRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	srv := transporttest.NewServer(t, root)
	if err := os.Symlink(parent, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	h := dial(t, config(t, srv))
	if err := transport.WriteFile(t.Context(), h, "/link/escaped", []byte("x"), 0o644, transport.Owner{}); err == nil {
		t.Error("WriteFile through a symbolic link out of the root succeeded")
	}
	// As on a real host, "/.." is "/".
	if err := transport.WriteFile(t.Context(), h, "/../x", []byte("x"), 0o644, transport.Owner{}); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(root, "x")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped")); err == nil {
		t.Error("a file escaped the server's root")
	}
}
