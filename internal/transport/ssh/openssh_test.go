package ssh_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/ssh"
	"github.com/cyrplan/cyrplan/internal/transport/transporttest"
)

const sshdPath = "/usr/sbin/sshd"

// startSSHD starts OpenSSH's sshd on 127.0.0.1 for root, with its own
// configuration and keys in a temporary directory, and returns a Config
// to reach it. It has an ed25519 and an ECDSA host key; known_hosts
// lists only the ed25519 one.
//
// The test is skipped without sshd or root, unless CYRPLAN_E2E=1, which
// makes that a failure.
func startSSHD(t *testing.T) ssh.Config {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CYRPLAN_E2E") == "1" {
		skip = t.Fatalf
	}
	if _, err := os.Stat(sshdPath); err != nil {
		skip("no OpenSSH server (%v): apt-get install openssh-server; CYRPLAN_E2E=1 makes this a failure", err)
	}
	if os.Geteuid() != 0 {
		skip("not root, and sshd serving root needs root; CYRPLAN_E2E=1 makes this a failure")
	}
	// sshd refuses to start without its privilege separation directory,
	// which the package's init script creates.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edKey := writeHostKey(t, filepath.Join(dir, "host_ed25519"), edPriv)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeHostKey(t, filepath.Join(dir, "host_ecdsa"), ecKey)
	clientKey, clientFile := transporttest.NewKeyFile(t)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), gossh.MarshalAuthorizedKey(clientKey), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	// StrictModes would refuse the key files under the world-writable /tmp.
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_ed25519
HostKey %[2]s/host_ecdsa
PidFile %[2]s/sshd.pid
AuthorizedKeysFile %[2]s/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
Subsystem sftp internal-sftp
`, port, dir)
	confFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	var stderr syncBuffer
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", confFile)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd output:\n%s", stderr.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(knownhosts.Line([]string{addr}, edKey)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return ssh.Config{
		Name:           "imap6",
		Address:        "127.0.0.1",
		Port:           port,
		KnownHostsFile: known,
		IdentityFile:   clientFile,
	}
}

// writeHostKey writes key to file in OpenSSH format and returns its
// public key.
func writeHostKey(t *testing.T, file string, key crypto.Signer) gossh.PublicKey {
	t.Helper()
	block, err := gossh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := gossh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOpenSSH(t *testing.T) {
	cfg := startSSHD(t)

	t.Run("Conformance", func(t *testing.T) {
		transporttest.Run(t, func(t *testing.T) transporttest.Fixture {
			dir := t.TempDir()
			return transporttest.Fixture{Host: dial(t, cfg), Dir: dir, LocalDir: dir}
		})
	})

	// sshd closes the session of a command that exits without reading
	// its input; what could not be written is not an error.
	t.Run("UnreadInput", func(t *testing.T) {
		h := dial(t, cfg)
		input := strings.Repeat("x", 4<<20)
		for range 5 {
			if err := h.Run(t.Context(), "true", strings.NewReader(input), nil, nil); err != nil {
				t.Fatalf("a command that reads none of its input: %v", err)
			}
		}
	})

	// Real owners, looked up in this machine's /etc/passwd and /etc/group
	// both by the transport (over SFTP) and here. daemon and mail are in
	// every Debian system.
	t.Run("Owner", func(t *testing.T) {
		h := dial(t, cfg)
		u, err := user.Lookup("daemon")
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroup("mail")
		if err != nil {
			t.Fatal(err)
		}
		owner := transport.Owner{User: "daemon", Group: "mail"}
		dir := t.TempDir()
		ctx := t.Context()
		if err := h.MkdirAll(ctx, dir+"/d", 0o2750, owner); err != nil {
			t.Fatal(err)
		}
		if err := transport.WriteFile(ctx, h, dir+"/d/f", []byte("x"), 0o640, owner); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{dir + "/d", dir + "/d/f"} {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if strconv.Itoa(int(st.Uid)) != u.Uid || strconv.Itoa(int(st.Gid)) != g.Gid {
				t.Errorf("%s is owned by %d:%d; want daemon:mail (%s:%s)", p, st.Uid, st.Gid, u.Uid, g.Gid)
			}
		}
		if fi, err := h.Stat(ctx, dir+"/d"); err != nil || fi.Mode.Perm() != 0o750 || fi.Mode&os.ModeSetgid == 0 {
			t.Errorf("Stat(d) = %v, %v; want mode 2750", fi.Mode, err)
		}
	})

	// Without TCP_QUICKACK the first session on a connection (the SFTP
	// one, in Dial) stalls ~40 ms on a delayed ACK; see withQuickAck.
	t.Run("QuickAck", func(t *testing.T) {
		key, err := os.ReadFile(cfg.IdentityFile)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := gossh.ParsePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
		// firstSession connects and returns how long opening the first
		// session takes.
		firstSession := func(wrap func(net.Conn) net.Conn) time.Duration {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c, chans, reqs, err := gossh.NewClientConn(wrap(conn), addr, &gossh.ClientConfig{
				User:            "root",
				Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
				HostKeyCallback: gossh.InsecureIgnoreHostKey(), // checked elsewhere
			})
			if err != nil {
				t.Fatal(err)
			}
			client := gossh.NewClient(c, chans, reqs)
			defer client.Close()
			start := time.Now()
			s, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			s.Close()
			return d
		}
		median := func(wrap func(net.Conn) net.Conn) time.Duration {
			var times []time.Duration
			for range 5 {
				times = append(times, firstSession(wrap))
			}
			slices.Sort(times)
			return times[len(times)/2]
		}
		with := median(ssh.WithQuickAck)
		without := median(func(c net.Conn) net.Conn { return c })
		t.Logf("first session: %v with TCP_QUICKACK, %v without", with, without)
		if with > 20*time.Millisecond {
			t.Errorf("opening the first session took %v (median); want well under the 40 ms delayed ACK", with)
		}
	})
}
