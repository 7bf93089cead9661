// Package testhosts simulates a fleet of SSH hosts on one Linux machine for
// cyrplan's end-to-end tests. It needs root, iproute2 (ip), util-linux
// (nsenter, mount) and openssh-server (/usr/sbin/sshd).
//
// Each host is a network namespace plus its own mount, UTS and PID namespaces,
// running a real OpenSSH sshd:
//
//   - Network: eth0 is one end of a veth pair whose other end is on the
//     fleet's bridge, with address Subnet.11, .12, ... /24 (in the order of
//     the names given to Up) and a fixed MAC per host. The root namespace has
//     Subnet.1 on the bridge and reaches every host directly; hosts of two
//     fleets cannot reach each other. An "unreachable" route for the subnet
//     keeps its traffic on this machine even if the bridge disappears.
//   - Files: /etc, /var and /usr are overlays whose lower layer is the real
//     directory and whose upper layer is Host.Dir/upper/etc, ...; /mnt, /run,
//     /tmp and /root are private bind mounts of Host.Dir/mnt, run, tmp and
//     root (an empty home, so that this machine's shell start-up files do not
//     run in the hosts' SSH sessions). What a host writes never reaches the
//     real directories or another host.
//   - Processes: PID 1 is an embedded shell script (boot.sh) that reaps
//     orphans and runs sshd. Killing it kills every process of the host,
//     daemons started over SSH included.
//
// Every fleet takes a free subnet 10.200.X.0/24 (X in 0..250) under the
// exclusive lock file /run/cyrplan-testhosts-X.lock, so fleets of test
// binaries running in parallel never collide. Its bridge is "cyrthX", the
// hosts' network namespaces "cyrthX-NAME" and the bridge-side veths
// "cyrthX-INDEX". A fleet left behind by a test binary that died (a timeout
// panic skips t.Cleanup) is torn down by the next fleet that takes its subnet.
package testhosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	sshdPath = "/usr/sbin/sshd"
	// firstHost is the last octet of the first host's address; hosts use
	// .11 to .99 and floating addresses .100 to .254.
	firstHost    = 11
	maxHosts     = 99 - firstHost + 1
	floatingBase = 100
	maxFloating  = 254 - floatingBase
	// sshdTimeout bounds how long Up, Boot and StartSSHD wait for sshd.
	sshdTimeout = 30 * time.Second
)

// hostEnv is the environment of every host's PID 1 and of Exec.
var hostEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C",
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// Require skips t with the reason when the harness cannot run here: not
// Linux, not root, or ip, nsenter, mount or /usr/sbin/sshd missing. When the
// environment variable CYRPLAN_E2E is "1" it fails t instead, so that CI
// never skips end-to-end tests silently.
func Require(t testing.TB) {
	t.Helper()
	err := checkMachine()
	if err == nil {
		return
	}
	if os.Getenv("CYRPLAN_E2E") == "1" {
		t.Fatalf("testhosts: %v (CYRPLAN_E2E=1, so this fails instead of skipping)", err)
	}
	t.Skipf("testhosts: %v (needs root, iproute2, util-linux and openssh-server; CYRPLAN_E2E=1 turns this skip into a failure)", err)
}

func checkMachine() error {
	if runtime.GOOS != "linux" {
		return errors.New("needs Linux namespaces")
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root")
	}
	var missing []string
	for _, p := range []string{"ip", "nsenter", "mount", sshdPath} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Up starts a fleet of the named hosts (e.g. "imap3", "imap5") for the test
// and registers a t.Cleanup that tears it down, whether the test passes or
// not. It fails t if the fleet cannot be built. Call Require first.
func Up(t testing.TB, names ...string) *Fleet {
	t.Helper()
	f, err := Start(Options{Logf: t.Logf}, names...)
	if err != nil {
		t.Fatalf("testhosts: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("testhosts: teardown: %v", err)
		}
	})
	return f
}

// Options configures Start.
type Options struct {
	// Dir is the fleet's directory. It must not exist or be empty, and must
	// not be under /etc, /var, /root, /usr, /mnt or /run (the hosts see their
	// own versions of those). Empty means a new directory under /tmp. Close
	// removes it.
	Dir string
	// Persistent keeps the fleet's subnet reserved after this process exits,
	// until Teardown(Dir). Without it, a fleet whose process died is torn
	// down by the next Start that takes its subnet.
	Persistent bool
	// Logf, if set, receives notes such as stale fleets being torn down.
	Logf func(format string, args ...any)
}

// Fleet is a set of simulated hosts on one bridge. Its methods are safe for
// concurrent use.
type Fleet struct {
	Subnet     string           // first three octets of the fleet's /24, e.g. "10.200.7"
	Bridge     string           // the bridge in the root namespace, e.g. "cyrth7"
	Dir        string           // the fleet's directory
	KnownHosts string           // known_hosts listing every host by address and by name
	Identity   string           // client private key (ed25519), authorized on every host as root
	Hosts      map[string]*Host // by name

	slot   int
	hosts  []*Host // in address order
	logf   func(format string, args ...any)
	mu     sync.Mutex // serializes writes of KnownHosts and of the state file
	closed sync.Once
	cerr   error
}

// Host is one simulated host. Its methods are safe for concurrent use.
type Host struct {
	Name string // host name, also its hostname
	Addr string // address of its eth0, e.g. "10.200.7.11"
	// Dir holds the host's files: upper/etc, upper/var and upper/usr hold
	// what the host changed under /etc, /var and /usr; mnt, run, tmp and
	// root are its /mnt, /run, /tmp and /root; console.log collects the
	// output of its PID 1 and sshd.
	Dir string

	fleet   *Fleet
	index   int    // 1-based position, gives the address, MAC and veth name
	hostKey string // public host key, authorized_keys format

	mu   sync.Mutex
	init *boot // nil when the host is down
	cut  bool
}

// boot is one run of a host's PID 1.
type boot struct {
	proc
	done chan struct{} // closed once PID 1 has exited; nil if not our child
	exit error         // how PID 1 exited, once done is closed
}

// Start builds a fleet of the named hosts and waits until every sshd accepts
// TCP connections. Tests use Up instead; the testhosts command uses Start
// with Persistent. On error it tears down what it made, like Close.
func Start(opts Options, names ...string) (*Fleet, error) {
	if err := checkNames(names); err != nil {
		return nil, err
	}
	dir, err := makeFleetDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	f := newFleet(dir, names, opts.Logf)
	// The state file goes first: it marks the directory as a fleet's, for
	// whoever tears it down should this process die.
	if err := f.saveState(); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	owner := os.Getpid()
	if opts.Persistent {
		owner = 0
	}
	slot, err := claimSlot(dir, owner, f.logf)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	f.setSlot(slot)
	if err := f.build(); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}

func checkNames(names []string) error {
	if len(names) == 0 || len(names) > maxHosts {
		return fmt.Errorf("need 1 to %d host names, got %d", maxHosts, len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !validName.MatchString(n) {
			return fmt.Errorf("bad host name %q (want %s)", n, validName)
		}
		if seen[n] {
			return fmt.Errorf("host name %q given twice", n)
		}
		seen[n] = true
	}
	return nil
}

func newFleet(dir string, names []string, logf func(string, ...any)) *Fleet {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	f := &Fleet{
		Dir:        dir,
		KnownHosts: filepath.Join(dir, "known_hosts"),
		Identity:   filepath.Join(dir, "id_ed25519"),
		Hosts:      map[string]*Host{},
		slot:       -1,
		logf:       logf,
	}
	for i, n := range names {
		h := &Host{Name: n, Dir: filepath.Join(dir, n), fleet: f, index: i + 1}
		f.Hosts[n] = h
		f.hosts = append(f.hosts, h)
	}
	return f
}

// setSlot gives the fleet its subnet and the hosts their addresses.
func (f *Fleet) setSlot(slot int) {
	f.slot = slot
	f.Subnet = fmt.Sprintf("10.200.%d", slot)
	f.Bridge = fmt.Sprintf("cyrth%d", slot)
	for _, h := range f.hosts {
		h.Addr = fmt.Sprintf("%s.%d", f.Subnet, firstHost+h.index-1)
	}
}

func (f *Fleet) build() error {
	if err := f.saveState(); err != nil { // records the slot before the network exists
		return err
	}
	cmds := []string{
		// The safety route goes first: should the bridge ever be missing,
		// the subnet is unreachable rather than sent to the default route.
		fmt.Sprintf("route add unreachable %s.0/24 metric 9999", f.Subnet),
		fmt.Sprintf("link add %s address %s type bridge forward_delay 0 stp_state 0", f.Bridge, mac(f.slot, 0)),
		fmt.Sprintf("addr add %s.1/24 dev %s", f.Subnet, f.Bridge),
		fmt.Sprintf("link set %s up", f.Bridge),
	}
	for _, h := range f.hosts {
		cmds = append(cmds, h.linkCommands()...)
	}
	var netErr error
	var wg sync.WaitGroup
	wg.Go(func() { netErr = ipBatch(cmds) })
	fileErr := f.writeFiles()
	wg.Wait()
	if err := errors.Join(netErr, fileErr); err != nil {
		return err
	}
	for _, h := range f.hosts {
		if err := h.start(); err != nil {
			return err
		}
	}
	if err := f.saveState(); err != nil {
		return err
	}
	errs := make([]error, len(f.hosts))
	for i, h := range f.hosts {
		wg.Go(func() { errs[i] = h.waitSSHD(true) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return f.writeKnownHosts()
}

// mac is the fixed MAC of host index i of slot (0: the bridge), so that a
// rebuilt link answers with the MAC the neighbour caches already hold.
func mac(slot, i int) string {
	return fmt.Sprintf("02:63:70:%02x:00:%02x", slot, i)
}

func (h *Host) netns() string { return h.fleet.Bridge + "-" + h.Name }
func (h *Host) veth() string  { return h.fleet.Bridge + "-" + strconv.Itoa(h.index) }

// linkCommands create the host's network namespace and its veth pair, the
// bridge side up unless the host is cut.
func (h *Host) linkCommands() []string {
	state := "up"
	if h.isCut() {
		state = "down"
	}
	return []string{
		"netns add " + h.netns(),
		fmt.Sprintf("link add %s type veth peer name eth0 address %s netns %s", h.veth(), mac(h.fleet.slot, h.index), h.netns()),
		fmt.Sprintf("link set %s master %s %s", h.veth(), h.fleet.Bridge, state),
	}
}

// start runs the host's PID 1: boot.sh inside its network namespace and new
// mount, UTS and PID namespaces, in a session of its own.
func (h *Host) start() error {
	// /run starts empty, like a tmpfs, but for what sshd needs.
	run := filepath.Join(h.Dir, "run")
	if err := emptyDir(run); err != nil {
		return err
	}
	for _, d := range []string{"sshd", "lock"} {
		if err := os.Mkdir(filepath.Join(run, d), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(run, d), 0o755); err != nil {
			return err
		}
	}
	console, err := os.OpenFile(filepath.Join(h.Dir, "console.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer console.Close()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.netns(), "--",
		"/bin/sh", h.fleet.bootPath(), h.Dir, h.Name, h.Addr+"/24")
	cmd.Dir = "/"
	cmd.Env = hostEnv
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:     true,
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWPID,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", h.Name, err)
	}
	b := &boot{proc: proc{pid: cmd.Process.Pid}, done: make(chan struct{})}
	go func() {
		b.exit = cmd.Wait()
		close(b.done)
	}()
	if b.start, _, err = procStat(b.pid); err != nil {
		return fmt.Errorf("%s: PID 1 vanished at once: %w", h.Name, err)
	}
	h.mu.Lock()
	h.init = b
	h.mu.Unlock()
	return nil
}

// running returns the host's PID 1, or an error if the host is down.
func (h *Host) running() (proc, error) {
	h.mu.Lock()
	b := h.init
	h.mu.Unlock()
	if b == nil {
		return proc{}, fmt.Errorf("host %s is down", h.Name)
	}
	select {
	case <-b.done:
		return proc{}, fmt.Errorf("host %s: PID 1 exited (%v); console.log:\n%s", h.Name, b.exit, h.consoleTail())
	default:
	}
	return b.proc, nil
}

func (h *Host) consoleTail() string {
	b, err := os.ReadFile(filepath.Join(h.Dir, "console.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (h *Host) isCut() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cut
}

// waitSSHD waits until the host's sshd accepts (up) or refuses (!up) TCP
// connections on port 22.
func (h *Host) waitSSHD(up bool) error {
	addr := net.JoinHostPort(h.Addr, "22")
	deadline := time.Now().Add(sshdTimeout)
	// No SYN before the host's eth0 is up: the ARP request would go
	// unanswered, and the kernel asks again only a second later.
	for !h.linkUp() {
		if _, err := h.running(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: eth0 not up after %v; console.log:\n%s", h.Name, sshdTimeout, h.consoleTail())
		}
		time.Sleep(2 * time.Millisecond)
	}
	for {
		if _, err := h.running(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		switch {
		case up && err == nil:
			return nil
		case !up && errors.Is(err, syscall.ECONNREFUSED):
			return nil
		case time.Now().After(deadline):
			still := "refuses"
			if !up {
				still = "accepts"
			}
			return fmt.Errorf("%s: sshd at %s still %s connections after %v (last: %v); console.log:\n%s",
				h.Name, addr, still, sshdTimeout, err, h.consoleTail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkUp tells whether both ends of the host's veth pair are up.
func (h *Host) linkUp() bool {
	b, err := os.ReadFile("/sys/class/net/" + h.veth() + "/operstate")
	return err == nil && strings.TrimSpace(string(b)) == "up"
}

// Host returns the named host; it panics if the fleet has no such host.
func (f *Fleet) Host(name string) *Host {
	h, ok := f.Hosts[name]
	if !ok {
		panic(fmt.Sprintf("testhosts: no host %q in the fleet", name))
	}
	return h
}

// FloatingAddr returns address n (0 to 154) of the range Subnet.100 to
// Subnet.254, which no host has at boot: for floating (service) addresses
// that scripts move between hosts.
func (f *Fleet) FloatingAddr(n int) string {
	if n < 0 || n > maxFloating {
		panic(fmt.Sprintf("testhosts: floating address %d out of 0..%d", n, maxFloating))
	}
	return fmt.Sprintf("%s.%d", f.Subnet, floatingBase+n)
}

// TrustFloating adds known_hosts lines for addr with every host's key: a
// floating address may be on any host, and OpenSSH and
// golang.org/x/crypto/ssh/knownhosts accept a key that matches any line.
func (f *Fleet) TrustFloating(addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, err := os.ReadFile(f.KnownHosts)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[l] = true
	}
	var add strings.Builder
	for _, h := range f.hosts {
		if l := addr + " " + h.hostKey; !have[l] {
			add.WriteString(l + "\n")
		}
	}
	kh, err := os.OpenFile(f.KnownHosts, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = kh.WriteString(add.String())
	return errors.Join(err, kh.Close())
}

// Holder returns the name of the host that has addr on its eth0, or "" if
// none has.
func (f *Fleet) Holder(addr string) (string, error) {
	holders := make([]bool, len(f.hosts))
	errs := make([]error, len(f.hosts))
	var wg sync.WaitGroup
	for i, h := range f.hosts {
		wg.Go(func() {
			addrs, err := h.addrs()
			holders[i], errs[i] = slices.Contains(addrs, addr), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	for i, held := range holders {
		if held {
			return f.hosts[i].Name, nil
		}
	}
	return "", nil
}

// FlushNeigh removes addr from the neighbour (ARP) cache of the root
// namespace and of every host, so that the next packet to addr asks again
// who has it. Moving an address without this or a gratuitous ARP leaves
// peers sending to the old host for about 30 s.
func (f *Fleet) FlushNeigh(addr string) error {
	errs := make([]error, len(f.hosts)+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = ipRun("neigh", "flush", "to", addr) })
	for i, h := range f.hosts {
		wg.Go(func() { errs[i+1] = ipRun("-n", h.netns(), "neigh", "flush", "to", addr) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// addrs lists the IPv4 addresses on the host's eth0.
func (h *Host) addrs() ([]string, error) {
	out, err := ipOutput("-n", h.netns(), "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, l := range strings.Split(out, "\n") {
		// 2: eth0    inet 10.200.7.11/24 brd 10.200.7.255 scope global eth0
		fs := strings.Fields(l)
		if len(fs) >= 4 && fs[2] == "inet" {
			a, _, _ := strings.Cut(fs[3], "/")
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

// Exec runs /bin/sh -c cmd inside the host (its network, mount, UTS and PID
// namespaces, as root, in /) and returns its combined output. The error
// includes the output. Cancelling ctx kills the command's process group.
// Output goes through a file, not a pipe, so a daemon the command leaves
// running does not keep Exec waiting.
func (h *Host) Exec(ctx context.Context, cmd string) (string, error) {
	p, err := h.running()
	if err != nil {
		return "", err
	}
	out, err := os.CreateTemp("", "cyrplan-testhosts-exec-")
	if err != nil {
		return "", err
	}
	defer out.Close()
	if err := os.Remove(out.Name()); err != nil {
		return "", err
	}
	c := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(p.pid), "-n", "-m", "-u", "-p", "-r", "-w",
		"--", "/bin/sh", "-c", cmd)
	c.Env = hostEnv
	c.Stdout = out
	c.Stderr = out
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	runErr := c.Run()
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(out)
	if err != nil {
		return "", err
	}
	if runErr != nil {
		return string(b), fmt.Errorf("%s: %q: %w; output:\n%s", h.Name, cmd, runErr, b)
	}
	return string(b), nil
}

// Path returns where the root file system shows the host's file p (an
// absolute path), e.g. /proc/<PID 1>/root/etc/cyrus/imapd.conf. It is valid
// while the host runs; Dir/upper has the host's changes at any time.
func (h *Host) Path(p string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	pid := 0
	if h.init != nil {
		pid = h.init.pid
	}
	return filepath.Join("/proc", strconv.Itoa(pid), "root", p)
}

// Cut takes the host's cable out: the bridge side of its veth goes down.
// Packets to it vanish without an answer (no RST), as with a powered-off
// machine: clients time out, or get "no route to host" once their neighbour
// entry has expired.
func (h *Host) Cut() error {
	h.mu.Lock()
	h.cut = true
	h.mu.Unlock()
	return ipRun("link", "set", h.veth(), "down")
}

// Uncut puts the cable back and flushes the host's addresses from every
// neighbour cache, so that peers reach it at once.
func (h *Host) Uncut() error {
	h.mu.Lock()
	h.cut = false
	h.mu.Unlock()
	if err := ipRun("link", "set", h.veth(), "up"); err != nil {
		return err
	}
	addrs, err := h.addrs()
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range addrs {
		errs = append(errs, h.fleet.FlushNeigh(a))
	}
	return errors.Join(errs...)
}

// Crash kills the host's PID namespace with SIGKILL: every process of the
// host dies at once. Its network stack stays, with all its addresses, and
// answers connections with RST, as a kernel whose processes all died would;
// for a power loss, Cut first.
func (h *Host) Crash() error {
	p, err := h.running()
	if err != nil {
		return err
	}
	err = killAndWait(h.fleet.bootPath(), []proc{p})
	h.mu.Lock()
	h.init = nil
	h.mu.Unlock()
	return err
}

// Boot starts a crashed host again, as after a reboot: a fresh network
// namespace (same address and MAC; floating addresses gone), an empty /run,
// and the upper layers, /mnt and /tmp kept. It returns once sshd accepts
// connections, or at once if the host is cut.
func (h *Host) Boot() error {
	if _, err := h.running(); err == nil {
		return fmt.Errorf("host %s is running", h.Name)
	}
	h.mu.Lock()
	h.init = nil
	h.mu.Unlock()
	var cmds []string
	if _, err := net.InterfaceByName(h.veth()); err == nil {
		cmds = append(cmds, "link del "+h.veth())
	}
	if _, err := os.Stat("/run/netns/" + h.netns()); err == nil {
		cmds = append(cmds, "netns del "+h.netns())
	}
	if err := ipBatch(append(cmds, h.linkCommands()...)); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	if err := h.fleet.saveState(); err != nil {
		return err
	}
	if err := h.fleet.FlushNeigh(h.Addr); err != nil {
		return err
	}
	if h.isCut() {
		return nil
	}
	return h.waitSSHD(true)
}

// StopSSHD stops the host's sshd (new connections are refused; open
// sessions and other services go on) and waits until it refuses
// connections, unless the host is cut.
func (h *Host) StopSSHD() error { return h.sshd(syscall.SIGUSR2, false) }

// StartSSHD starts the host's sshd again after StopSSHD and waits until it
// accepts connections, unless the host is cut.
func (h *Host) StartSSHD() error { return h.sshd(syscall.SIGUSR1, true) }

// sshd asks the host's PID 1 (boot.sh) to start or stop sshd.
func (h *Host) sshd(sig syscall.Signal, up bool) error {
	p, err := h.running()
	if err != nil {
		return err
	}
	if !p.is(h.fleet.bootPath()) {
		return fmt.Errorf("host %s: PID %d is not its boot.sh any more", h.Name, p.pid)
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("host %s: signal PID 1: %w", h.Name, err)
	}
	if h.isCut() {
		return nil
	}
	return h.waitSSHD(up)
}

// ipRun runs ip with args; the error includes its output.
func ipRun(args ...string) error {
	_, err := ipOutput(args...)
	return err
}

func ipOutput(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ipBatch runs several ip commands (one per line, without "ip") in one
// process; it stops at the first failing one.
func ipBatch(cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	c := exec.Command("ip", "-batch", "-")
	c.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch: %w: %s\ncommands:\n%s", err, strings.TrimSpace(string(out)), strings.Join(cmds, "\n"))
	}
	return nil
}
