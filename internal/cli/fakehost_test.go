package cli

// The fake fleet of the testscript archives: every host of a script is a
// real SSH+SFTP server (transporttest) on a loopback address of its own,
// reached by cyrplan's ssh transport with strict known_hosts checking.
// Its files are the directory $WORK/hosts/<host>; its commands are run
// by fakeHost, which knows just enough of a Debian host with Cyrus to
// be planned, applied, asked for status and failed over.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	gossh "golang.org/x/crypto/ssh"

	"github.com/cyrplan/cyrplan/internal/transport/transporttest"
)

// scriptCmds are the commands the archives use besides testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"sshhosts": cmdSSHHosts,
	"hostctl":  cmdHostctl,
	"exits":    cmdExits,
}

// fleetKey is the Env.Values key of a script's *fakeFleet.
type fleetKey struct{}

// fakeFleet is the hosts of one script.
type fakeFleet struct {
	hosts map[string]*fakeHost
}

// setupFleet gives a script an empty fleet and closes it at the end.
func setupFleet(env *testscript.Env) {
	fl := &fakeFleet{hosts: map[string]*fakeHost{}}
	env.Values[fleetKey{}] = fl
	env.Defer(func() {
		for _, h := range fl.hosts {
			h.close()
		}
	})
}

func fleetOf(ts *testscript.TestScript) *fakeFleet {
	return ts.Value(fleetKey{}).(*fakeFleet)
}

// Each script's hosts live in a /24 of 127.0.0.0/8 of its own (every
// address of it is loopback on Linux), so that the slots of parallel
// scripts, which listen on fixed ports, never meet. The random start
// keeps two test processes apart too.
var (
	netBase = mathrand.IntN(128 * 256)
	netNext atomic.Int32
)

func nextNet() string {
	i := (netBase + int(netNext.Add(1))) % (128 * 256)
	return fmt.Sprintf("127.%d.%d", 64+i/256, i%256)
}

// cmdSSHHosts starts a fake host for every NAME=NUMBER, at address
// <net>.NUMBER, and writes LAYOUTDIR/hosts.cue, a known_hosts file and a
// client key, which CYRPLAN_KNOWN_HOSTS and CYRPLAN_IDENTITY name.
//
//	sshhosts LAYOUTDIR NAME=NUMBER...
func cmdSSHHosts(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: sshhosts LAYOUTDIR NAME=NUMBER...")
	}
	fl := fleetOf(ts)
	if len(fl.hosts) > 0 {
		ts.Fatalf("sshhosts: the script has its hosts already")
	}
	work := ts.Getenv("WORK")
	sshDir := filepath.Join(work, ".ssh")
	ts.Check(os.MkdirAll(sshDir, 0o700))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	ts.Check(err)
	block, err := gossh.MarshalPrivateKey(priv, "")
	ts.Check(err)
	identity := filepath.Join(sshDir, "id_ed25519")
	ts.Check(os.WriteFile(identity, pem.EncodeToMemory(block), 0o600))
	clientKey, err := gossh.NewPublicKey(pub)
	ts.Check(err)

	subnet := nextNet()
	var known, cue strings.Builder
	cue.WriteString("package layout\n\n// Written by sshhosts: every host is an SSH server of the test.\nhosts: {\n")
	for _, arg := range args[1:] {
		name, num, ok := strings.Cut(arg, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || n > 254 || name == "" {
			ts.Fatalf("sshhosts: %q is not NAME=NUMBER (1 to 254)", arg)
		}
		if fl.hosts[name] != nil {
			ts.Fatalf("sshhosts: host %s twice", name)
		}
		addr := fmt.Sprintf("%s.%d", subnet, n)
		h, err := startFakeHost(name, filepath.Join(work, "hosts", name), addr, clientKey)
		if err != nil {
			ts.Fatalf("sshhosts: %s: %v", name, err)
		}
		fl.hosts[name] = h
		known.WriteString(h.srv.KnownHostsLine(addr) + "\n")
		fmt.Fprintf(&cue, "\t%s: {number: %d, address: %q, ssh: port: %d}\n", name, n, addr, h.srv.Port)
	}
	cue.WriteString("}\n")
	knownHosts := filepath.Join(sshDir, "known_hosts")
	ts.Check(os.WriteFile(knownHosts, []byte(known.String()), 0o644))
	layoutDir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(layoutDir, 0o755))
	ts.Check(os.WriteFile(filepath.Join(layoutDir, "hosts.cue"), []byte(cue.String()), 0o644))
	ts.Setenv("CYRPLAN_KNOWN_HOSTS", knownHosts)
	ts.Setenv("CYRPLAN_IDENTITY", identity)
}

// cmdHostctl changes a fake host:
//
//	hostctl NAME down              the host goes off: SSH refuses connections, its slots stop
//	hostctl NAME up                SSH answers again (slots stay stopped until started)
//	hostctl NAME stall             SSH connects, but every SFTP request hangs
//	hostctl NAME fail SUBSTR CODE  commands containing SUBSTR exit CODE without running
//	hostctl NAME fail SUBSTR CODE TEXT...
//	                               ... and print TEXT on stderr
//	hostctl NAME reply SUBSTR TEXT commands containing SUBSTR print TEXT and exit 0
//	hostctl NAME crash SLOT        the slot's master dies (its IMAP port closes)
//	hostctl NAME nosync SLOT       the master slot's sync_client dies
//	hostctl NAME sync SLOT         ... and runs again
//	hostctl NAME running SLOT      succeeds if the slot's master runs (! for the opposite)
//	hostctl NAME stalelock         a lock left by a cyrplan of this machine that was killed
//	hostctl NAME install PREFIX    install a Cyrus build: PREFIX/bin/master and the tools
func cmdHostctl(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: hostctl NAME down|up|fail|reply|crash|running|stalelock ...")
	}
	h := fleetOf(ts).hosts[args[0]]
	if h == nil {
		ts.Fatalf("hostctl: no host %q (start it with sshhosts)", args[0])
	}
	verb, rest := args[1], args[2:]
	if neg && verb != "running" {
		ts.Fatalf("hostctl %s: cannot be negated", verb)
	}
	switch {
	case verb == "down" && len(rest) == 0:
		h.srv.Stop()
		h.stopAll()
	case verb == "stall" && len(rest) == 0:
		h.srv.Stall(true)
	case verb == "up" && len(rest) == 0:
		ts.Check(h.srv.Restart())
	case verb == "fail" && len(rest) == 2:
		code, err := strconv.Atoi(rest[1])
		if err != nil {
			ts.Fatalf("hostctl fail: exit code %q is not a number", rest[1])
		}
		h.srv.SetExitCode(rest[0], code)
	case verb == "fail" && len(rest) > 2:
		code, err := strconv.Atoi(rest[1])
		if err != nil {
			ts.Fatalf("hostctl fail: exit code %q is not a number", rest[1])
		}
		h.mu.Lock()
		h.replies = append(h.replies, reply{rest[0], code, strings.Join(rest[2:], " ")})
		h.mu.Unlock()
	case verb == "reply" && len(rest) >= 2:
		h.mu.Lock()
		h.replies = append(h.replies, reply{rest[0], 0, strings.Join(rest[1:], " ")})
		h.mu.Unlock()
	case verb == "crash" && len(rest) == 1:
		if !h.stop(rest[0]) {
			ts.Fatalf("hostctl crash: %s does not run on %s", rest[0], h.name)
		}
	case (verb == "nosync" || verb == "sync") && len(rest) == 1:
		h.mu.Lock()
		h.syncStopped[rest[0]] = verb == "nosync"
		h.mu.Unlock()
	case verb == "running" && len(rest) == 1:
		h.mu.Lock()
		_, running := h.slots[rest[0]]
		h.mu.Unlock()
		if running == neg {
			ts.Fatalf("hostctl running: %s on %s: running is %v", rest[0], h.name, running)
		}
	case verb == "stalelock" && len(rest) == 0:
		ts.Check(h.staleLock())
	case verb == "install" && len(rest) == 1:
		ts.Check(h.install(rest[0]))
	default:
		ts.Fatalf("hostctl: bad arguments %q", args[1:])
	}
}

// cmdExits runs a program as exec does and checks its exit status.
//
//	exits CODE PROG [ARGS...]
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not an exit code", args[0])
	}
	got := 0
	var ee *exec.ExitError
	switch err := ts.Exec(args[1], args[2:]...); {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("exits: %s exited %d, want %d", args[1], got, want)
	}
}

// fakeHost answers the commands cyrplan runs on a host.
type fakeHost struct {
	name string
	addr string
	root *os.Root
	srv  *transporttest.Server

	mu    sync.Mutex
	slots map[string]*fakeSlot // running slot masters
	// syncStopped are the master slots whose sync_client died.
	syncStopped map[string]bool
	replies     []reply
	pid         int
}

// reply is a canned answer to the commands that contain substr: text on
// stdout (code 0) or stderr, and the exit code.
type reply struct {
	substr string
	code   int
	text   string
}

// fakeSlot is a running slot: its master listens on the slot's IMAP
// address and greets with the slot's name.
type fakeSlot struct {
	l      net.Listener
	served chan struct{} // closed when the accept loop has ended
	role   string
	addr   string
	pid    int
	master string // the executable it runs
}

// hostFiles are the users and groups the rendered tree names.
var hostFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\ncyrus:x:103:8:Cyrus Mailsystem User:/var/spool/cyrus:/usr/sbin/nologin\n",
	"etc/group":  "root:x:0:\nmail:x:8:cyrus\n",
}

func startFakeHost(name, dir, addr string, clientKey gossh.PublicKey) (*fakeHost, error) {
	for f, content := range hostFiles {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	h := &fakeHost{name: name, addr: addr, root: root, slots: map[string]*fakeSlot{}, syncStopped: map[string]bool{}, pid: 4000}
	h.srv, err = transporttest.Start(dir, transporttest.WithListenAddr(addr), transporttest.WithClientKey(clientKey),
		transporttest.WithExec(h.exec))
	if err != nil {
		root.Close()
		return nil, err
	}
	return h, nil
}

func (h *fakeHost) close() {
	h.srv.Close()
	h.stopAll()
	h.root.Close()
}

// exec runs one command of an SSH session.
func (h *fakeHost) exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
	if strings.HasPrefix(cmd, replicationPrefix) {
		return h.replication(cmd, stdout)
	}
	if strings.HasPrefix(cmd, "command -v ") {
		return h.sh(ctx, cmd, stdin, stdout, stderr)
	}
	words, err := shellWords(cmd)
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	if len(words) == 0 {
		return 0
	}
	h.mu.Lock()
	for i := len(h.replies) - 1; i >= 0; i-- {
		if r := h.replies[i]; strings.Contains(cmd, r.substr) {
			h.mu.Unlock()
			w := stdout
			if r.code != 0 {
				w = stderr
			}
			fmt.Fprintln(w, r.text)
			return r.code
		}
	}
	h.mu.Unlock()
	if m := countLinesRE.FindStringSubmatch(cmd); m != nil {
		data, _ := h.root.ReadFile(rel(m[1]))
		fmt.Fprintln(stdout, strings.Count(string(data), "\n"))
		return 0
	}
	switch {
	case words[0] == "test" && len(words) == 3 && words[1] == "-x":
		if h.executable(words[2]) {
			return 0
		}
		return 1
	case strings.HasPrefix(words[0], "/etc/init.d/cyrus-") && len(words) == 2:
		return h.initScript(words[0], words[1], stdout, stderr)
	case strings.HasPrefix(words[0], "/") && !h.executable(words[0]):
		fmt.Fprintf(stderr, "sh: 1: %s: not found\n", words[0])
		return 127
	}
	return 0 // any other command succeeds, and says nothing
}

// sh runs a script of cyrplan's own (the observe command, the keyed
// hashes: both begin with "command -v") in a real sh, on the host's
// files: every quoted absolute path in it (shell.Quote's) is taken inside the root, and
// the root is taken out of what it prints.
func (h *fakeHost) sh(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
	dir := h.root.Name()
	c := exec.CommandContext(ctx, "sh", "-c", quotedAbsRE.ReplaceAllString(cmd, "${1}'"+dir+"/"))
	var out bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, stderr
	err := c.Run()
	stdout.Write(bytes.ReplaceAll(out.Bytes(), []byte(dir), nil))
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		fmt.Fprintln(stderr, err)
		return 126
	}
	return 0
}

// quotedAbsRE finds the opening quote of a quoted absolute path.
var quotedAbsRE = regexp.MustCompile(`(^|[\s=<>])'/`)

// rel is a host path as a path in the root.
func rel(p string) string {
	if r := strings.TrimLeft(p, "/"); r != "" {
		return r
	}
	return "."
}

// executable reports whether p is an executable file on the host.
func (h *fakeHost) executable(p string) bool {
	fi, err := h.root.Stat(rel(p))
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// onhost.Replication's command: its first line, the sync logs it
// counts, and the sync_client processes it looks for.
const replicationPrefix = "procs=$(for p in /proc/"

var (
	replLogRE    = regexp.MustCompile(`(?m)^if \[ -s '([^']*)' \]; then echo log '([^']*)' `)
	replClientRE = regexp.MustCompile(`(?m)grep -qF -- 'sync_client -C /etc/cyrus/([^/']*)/imapd.conf -r -n ([^' ]*) '`)
)

// replication answers onhost.Replication: a running slot recorded as
// master runs a sync_client for each peer; a log's creation time is unknown (0), so
// its age is the time since it was last written.
func (h *fakeHost) replication(cmd string, stdout io.Writer) int {
	for _, m := range replLogRE.FindAllStringSubmatch(cmd, -1) {
		fi, err := h.root.Stat(rel(m[1]))
		if err != nil || fi.Size() == 0 {
			continue
		}
		data, _ := h.root.ReadFile(rel(m[1]))
		fmt.Fprintf(stdout, "log %s %d 0 %d\n", m[2], strings.Count(string(data), "\n"), fi.ModTime().Unix())
	}
	for _, m := range replClientRE.FindAllStringSubmatch(cmd, -1) {
		h.mu.Lock()
		s := h.slots[m[1]]
		h.mu.Unlock()
		// The scripts fail over by writing role files: the recorded
		// role, not the one the slot started in, says who replicates.
		role, _ := h.root.ReadFile(rel("/var/lib/cyrplan/roles/" + m[1]))
		run := 0
		if s != nil && strings.TrimSpace(string(role)) != "replica" && !h.syncStopped[m[1]] {
			run = 1
		}
		fmt.Fprintf(stdout, "client %s %d\n", m[2], run)
	}
	fmt.Fprintf(stdout, "now %d\n", time.Now().Unix())
	return 0
}

// countLinesRE is onhost.CountLines's command.
var countLinesRE = regexp.MustCompile(`^if \[ -f '([^']*)' \]; then wc -l < `)

var initVarRE = regexp.MustCompile(`(?m)^([A-Z_]+)=(\S*)$`)

// imapListenRE finds the address of a cyrus.conf's imap service.
var imapListenRE = regexp.MustCompile(`(?m)^\s*imap\s+cmd="[^"]*"\s+listen="([^"]+)"`)

// initScript does what the rendered init script (render/init.sh.tmpl)
// does, with the variables it sets: it starts a slot's master in the
// slot's current role (ROLEFILE, else DEFAULT_ROLE) on the IMAP address
// of cyrus-<role>.conf, and reports status in the script's format.
func (h *fakeHost) initScript(script, verb string, stdout, stderr io.Writer) int {
	data, err := h.root.ReadFile(rel(script))
	if err != nil {
		fmt.Fprintf(stderr, "sh: 1: %s: not found\n", script)
		return 127
	}
	vars := map[string]string{}
	for _, m := range initVarRE.FindAllStringSubmatch(string(data), -1) {
		w, err := shellWords(m[2])
		if err != nil || len(w) > 1 {
			fmt.Fprintf(stderr, "sh: %s: bad value %s\n", script, m[2])
			return 2
		}
		vars[m[1]] = strings.Join(w, "")
	}
	slot := vars["SLOT"]
	role := vars["DEFAULT_ROLE"]
	if r, err := h.root.ReadFile(rel(vars["ROLEFILE"])); err == nil {
		if w := strings.TrimSpace(string(r)); w == "master" || w == "replica" {
			role = w
		}
	}
	switch verb {
	case "start":
		return h.start(slot, role, vars, stdout, stderr)
	case "stop":
		if h.stop(slot) {
			fmt.Fprintf(stdout, "%s: stopped\n", slot)
		} else {
			fmt.Fprintf(stdout, "%s: not running\n", slot)
		}
		return 0
	case "restart":
		h.stop(slot)
		return h.start(slot, role, vars, stdout, stderr)
	case "reload", "force-reload":
		h.mu.Lock()
		s := h.slots[slot]
		h.mu.Unlock()
		if s == nil {
			fmt.Fprintf(stderr, "%s: not running\n", slot)
			return 1
		}
		if addr, err := h.imapAddr(vars, role); err != nil || s.role != role || addr != s.addr {
			// A changed role (or address) needs a restart, as in the script.
			h.stop(slot)
			return h.start(slot, role, vars, stdout, stderr)
		}
		fmt.Fprintf(stdout, "%s: reloaded (pid %d)\n", slot, s.pid)
		return 0
	case "status":
		h.mu.Lock()
		s := h.slots[slot]
		h.mu.Unlock()
		if s == nil {
			fmt.Fprintf(stdout, "%s: not running\n", slot)
			return 3
		}
		fmt.Fprintf(stdout, "%s: running as %s (pid %d, %s)\n", slot, role, s.pid, s.master)
		return 0
	case "role":
		fmt.Fprintln(stdout, role)
		return 0
	}
	fmt.Fprintf(stderr, "usage: %s {start|stop|restart|reload|status|role}\n", script)
	return 2
}

// imapAddr is the IMAP address of the slot's cyrus.conf for role.
func (h *fakeHost) imapAddr(vars map[string]string, role string) (string, error) {
	conf := vars["CONFDIR"] + "/cyrus-" + role + ".conf"
	data, err := h.root.ReadFile(rel(conf))
	if err != nil {
		return "", err
	}
	m := imapListenRE.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("%s has no imap service", conf)
	}
	return string(m[1]), nil
}

func (h *fakeHost) start(slot, role string, vars map[string]string, stdout, stderr io.Writer) int {
	h.mu.Lock()
	delete(h.syncStopped, slot) // a master that starts starts its sync_client
	if s := h.slots[slot]; s != nil {
		h.mu.Unlock()
		fmt.Fprintf(stdout, "%s: already running (pid %d)\n", slot, s.pid)
		return 0
	}
	h.mu.Unlock()
	master := vars["PREFIX"] + "/bin/master"
	if !h.executable(master) {
		fmt.Fprintf(stderr, "sh: 1: %s: not found\n", master)
		return 1
	}
	addr, err := h.imapAddr(vars, role)
	if err != nil {
		fmt.Fprintf(stderr, "%s/master: %v\n", slot, err)
		return 1
	}
	// As Cyrus's master does, a bind that finds the address still in use
	// is tried again for a while.
	l, err := net.Listen("tcp", addr)
	for try := 0; errors.Is(err, syscall.EADDRINUSE) && try < 40; try++ {
		time.Sleep(50 * time.Millisecond)
		l, err = net.Listen("tcp", addr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s/master: %v\n", slot, err)
		return 1
	}
	greeting := "* OK [CAPABILITY IMAP4rev1] " + slot + " Cyrus IMAP 3.6.1 server ready\r\n"
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, greeting)
			c.Close()
		}
	}()
	h.mu.Lock()
	h.pid++
	s := &fakeSlot{l: l, served: served, role: role, addr: addr, pid: h.pid, master: master}
	h.slots[slot] = s
	h.mu.Unlock()
	fmt.Fprintf(stdout, "%s: started as %s (pid %d)\n", slot, role, s.pid)
	return 0
}

// stop stops a slot's master and reports whether it ran.
func (h *fakeHost) stop(slot string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.slots[slot]
	if s == nil {
		return false
	}
	s.close()
	delete(h.slots, slot)
	return true
}

// close stops the slot's listener and waits until its socket is closed:
// Close only wakes the Accept that holds it, and a start at once on the
// same address would find it still in use.
func (s *fakeSlot) close() {
	s.l.Close()
	<-s.served
}

func (h *fakeHost) stopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, s := range h.slots {
		s.close()
		delete(h.slots, name)
	}
}

// cyrusTools are the programs a fake Cyrus build has in PREFIX/bin.
var cyrusTools = []string{"master", "imapd", "lmtpd", "ctl_cyrusdb", "cyr_expire", "sync_client", "sync_server",
	"mbpath", "quota", "cyr_dbtool", "reconstruct"}

// install puts a fake Cyrus build under prefix.
func (h *fakeHost) install(prefix string) error {
	bin := rel(prefix + "/bin")
	if err := h.root.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, t := range cyrusTools {
		if err := h.root.WriteFile(bin+"/"+t, []byte("#!/bin/sh\n# fake Cyrus "+t+"\n"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// staleLock writes the apply lock of a cyrplan of this machine whose
// process is gone (see apply.Lock).
func (h *fakeHost) staleLock() error {
	machine, err := os.Hostname()
	if err != nil {
		return err
	}
	// No process has a pid of pid_max or more.
	pid := 4194304
	if data, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			pid = n
		}
	}
	data, err := json.Marshal(map[string]any{"holder": "ops@" + machine, "machine": machine, "pid": pid,
		"time": "2025-03-01T09:00:00Z", "applyId": "20250301T090000Z-dead00"})
	if err != nil {
		return err
	}
	if err := h.root.MkdirAll("var/lib/cyrplan", 0o755); err != nil {
		return err
	}
	return h.root.WriteFile("var/lib/cyrplan/lock", append(data, '\n'), 0o644)
}

// shellWords splits a command line as sh does for the commands cyrplan
// runs: words separated by blanks, with '...', "..." and \ quoting.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // in a word
	)
	r := bufio.NewReader(strings.NewReader(s))
	for {
		c, _, err := r.ReadRune()
		if err == io.EOF {
			break
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\'':
			in = true
			for {
				c, _, err := r.ReadRune()
				if err != nil {
					return nil, errors.New("unterminated quoted string")
				}
				if c == '\'' {
					break
				}
				cur.WriteRune(c)
			}
		case c == '"':
			in = true
			for {
				c, _, err := r.ReadRune()
				if err != nil {
					return nil, errors.New("unterminated quoted string")
				}
				if c == '"' {
					break
				}
				if c == '\\' {
					if c, _, err = r.ReadRune(); err != nil {
						return nil, errors.New("unterminated quoted string")
					}
				}
				cur.WriteRune(c)
			}
		case c == '\\':
			in = true
			if c, _, err = r.ReadRune(); err == nil {
				cur.WriteRune(c)
			}
		default:
			in = true
			cur.WriteRune(c)
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`test -x '/usr/lib/cyrus/bin/master'`:        {"test", "-x", "/usr/lib/cyrus/bin/master"},
		`'/x/bin/mbpath' -C '/etc/c' 'user/it'\''s'`: {"/x/bin/mbpath", "-C", "/etc/c", "user/it's"},
		`a  "b \"c\"" d\ e ''`:                       {"a", `b "c"`, "d e", ""},
		"":                                           nil,
	} {
		got, err := shellWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := shellWords(`echo 'open`); err == nil {
		t.Errorf("shellWords of an unterminated quote: no error")
	}
}
