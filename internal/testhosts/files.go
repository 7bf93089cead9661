package testhosts

import (
	"crypto/ed25519"
	"crypto/rand"
	_ "embed" // boot.sh
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

//go:embed boot.sh
var bootScript []byte

const stateFile = "fleet.json"

// overlaid are the directories each host sees copy-on-write. /root is not
// one of them: each host has an empty home of its own, as a fresh machine
// would, so that no shell start-up file of this machine's root (a
// .bashrc that runs pyenv, say) runs in every SSH session of every host.
var overlaid = []string{"/etc", "/var", "/usr"}

// sshdConfig is every host's /etc/ssh/sshd_config. ListenAddress 0.0.0.0
// makes sshd answer on floating addresses added later.
const sshdConfig = `# written by cyrplan's testhosts
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/testhost_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/testhost_authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
X11Forwarding no
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
LogLevel INFO
`

// fleetState is what the state file records, so that a fleet can be torn
// down by another process (Teardown, or the next fleet on a stale subnet).
type fleetState struct {
	Slot  int         `json:"slot"` // -1 until a subnet is claimed
	Hosts []hostState `json:"hosts"`
}

type hostState struct {
	Name  string `json:"name"`
	PID   int    `json:"pid,omitempty"`   // PID 1 of the host, 0 when down
	Start uint64 `json:"start,omitempty"` // its start time, see procStat
}

func (f *Fleet) bootPath() string { return filepath.Join(f.Dir, "boot.sh") }

// saveState writes the state file atomically.
func (f *Fleet) saveState() error {
	st := fleetState{Slot: f.slot}
	for _, h := range f.hosts {
		hs := hostState{Name: h.Name}
		h.mu.Lock()
		if h.init != nil {
			hs.PID, hs.Start = h.init.pid, h.init.start
		}
		h.mu.Unlock()
		st.Hosts = append(st.Hosts, hs)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeAtomic(filepath.Join(f.Dir, stateFile), b)
}

func loadState(dir string) (fleetState, error) {
	var st fleetState
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := writeFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// makeFleetDir returns the absolute fleet directory, created empty.
func makeFleetDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("/tmp", "cyrplan-testhosts-")
		if err != nil {
			return "", err
		}
		return d, os.Chmod(d, 0o755)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, p := range append([]string{"/mnt", "/run"}, overlaid...) {
		if dir == p || strings.HasPrefix(dir, p+"/") {
			return "", fmt.Errorf("fleet directory %s: must not be under %s, which every host replaces", dir, p)
		}
	}
	if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return "", err
		}
		if len(ents) > 0 {
			return "", fmt.Errorf("fleet directory %s exists and is not empty (a fleet still up? tear it down first)", dir)
		}
	} else if err != nil {
		return "", err
	}
	return dir, nil
}

// writeFiles writes the client key, boot.sh and every host's directories,
// host key and configuration (into its /etc upper layer).
func (f *Fleet) writeFiles() error {
	clientPub, err := writeKey(f.Identity, "cyrplan-testhosts-client")
	if err != nil {
		return err
	}
	if err := writeFile(f.bootPath(), bootScript, 0o755); err != nil {
		return err
	}
	realHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return err
	}
	var hosts strings.Builder
	hosts.Write(realHosts)
	hosts.WriteString("# hosts of this cyrplan testhosts fleet\n")
	for _, h := range f.hosts {
		fmt.Fprintf(&hosts, "%s %s\n", h.Addr, h.Name)
	}
	errs := make([]error, len(f.hosts))
	var wg sync.WaitGroup
	for i, h := range f.hosts {
		wg.Go(func() {
			if err := h.writeFiles(clientPub, hosts.String()); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (h *Host) writeFiles(clientPub, etcHosts string) error {
	for _, d := range overlaid {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		for _, layer := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(h.Dir, layer, d), 0o755); err != nil {
				return err
			}
		}
		// The upper directory's mode is what the host sees on d itself
		// (sshd's StrictModes checks /etc, for one).
		if err := os.Chmod(filepath.Join(h.Dir, "upper", d), fi.Mode()&(fs.ModePerm|fs.ModeSticky)); err != nil {
			return err
		}
	}
	for d, mode := range map[string]fs.FileMode{"mnt": 0o755, "run": 0o755, "tmp": 0o777 | fs.ModeSticky, "root": 0o700} {
		if err := os.Mkdir(filepath.Join(h.Dir, d), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(h.Dir, d), mode); err != nil {
			return err
		}
	}
	etc := filepath.Join(h.Dir, "upper", "etc")
	if err := os.Mkdir(filepath.Join(etc, "ssh"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(etc, "ssh"), 0o755); err != nil {
		return err
	}
	pub, err := writeKey(filepath.Join(etc, "ssh", "testhost_ed25519_key"), "root@"+h.Name)
	if err != nil {
		return err
	}
	h.hostKey = pub
	for name, content := range map[string]string{
		"ssh/testhost_authorized_keys": clientPub + "\n",
		"ssh/sshd_config":              sshdConfig,
		"hostname":                     h.Name + "\n",
		"hosts":                        etcHosts,
	} {
		if err := writeFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeKey writes a new ed25519 private key in OpenSSH format to path (mode
// 0600) and its public key to path.pub, and returns the public key in
// authorized_keys format without the comment.
func writeKey(path, comment string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	return line, writeFile(path+".pub", []byte(line+" "+comment+"\n"), 0o644)
}

// writeKnownHosts lists every host by address and by name.
func (f *Fleet) writeKnownHosts() error {
	var b strings.Builder
	for _, h := range f.hosts {
		fmt.Fprintf(&b, "%s,%s %s\n", h.Addr, h.Name, h.hostKey)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeAtomic(f.KnownHosts, []byte(b.String()))
}

// writeFile writes b to path with exactly mode, whatever the umask.
func writeFile(path string, b []byte, mode fs.FileMode) error {
	if err := os.WriteFile(path, b, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// emptyDir removes everything in dir.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
