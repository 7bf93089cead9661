package e2e

// Helpers of the SIGKILL tests (kill_test.go): running the cyrplan binary
// and killing it, reading plans and manifests (only the fields the tests
// need, so that a change of format elsewhere does not break them), the
// service actions an apply's log says it ran, and comparing a host tree
// with a rendered one.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cyrplan/cyrplan/internal/testhosts"
)

// binRun is one finished run of the cyrplan binary.
type binRun struct {
	stdout, stderr string
	code           int  // exit status; -1 when killed
	killed         bool // SIGKILL ended it (it had not exited by then)
	took           time.Duration
}

// killAt says when runBinKilled kills the binary: after a delay from its
// start, or once a line of its output matches (then after extra), which
// ever comes first. A zero killAt never kills.
type killAt struct {
	after time.Duration
	line  func(string) bool
	extra time.Duration
}

// runBin runs the cyrplan binary to completion. A hung command is killed
// after a generous safety timeout, which fails t.
func runBin(t *testing.T, bin string, args ...string) binRun {
	t.Helper()
	r := runBinKilled(t, bin, killAt{after: 5 * time.Minute}, args...)
	if r.killed {
		t.Fatalf("cyrplan %s: still running after 5 minutes; killed\n%s%s", strings.Join(args, " "), tail(r.stdout, 3000), r.stderr)
	}
	return r
}

// runBinKilled runs the cyrplan binary and sends it SIGKILL as k says,
// unless it has exited by then. Its output is read line by line as it
// comes (cyrplan does not buffer it): everything it wrote before the kill
// is in the result.
func runBinKilled(t *testing.T, bin string, k killAt, args ...string) binRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { cmd.Process.Signal(syscall.SIGKILL) }
	var timer *time.Timer
	if k.after > 0 {
		timer = time.AfterFunc(k.after, kill)
	} else {
		timer = time.AfterFunc(time.Hour, kill) // never, in practice: a safety net
	}
	var stdout strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	triggered := false
	for sc.Scan() {
		line := sc.Text()
		stdout.WriteString(line + "\n")
		if !triggered && k.line != nil && k.line(line) {
			triggered = true
			if k.extra <= 0 {
				kill()
			} else {
				defer time.AfterFunc(k.extra, kill).Stop()
			}
		}
	}
	io.Copy(io.Discard, pipe)
	cmd.Wait()
	timer.Stop()
	r := binRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start), code: cmd.ProcessState.ExitCode()}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	r.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
	return r
}

// tail returns the last n bytes of s, for failure messages.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// planDoc is the part of the plan's JSON form (plan --json) the tests
// read: which slots have which action.
type planDoc struct {
	Hosts []struct {
		Host  string `json:"host"`
		Error string `json:"error"`
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	} `json:"hosts"`
	Actions []struct {
		Host string `json:"host"`
		Slot string `json:"slot"`
		Verb string `json:"verb"`
	} `json:"actions"`
}

// actionsBySlot maps each slot of the plan's actions to its verb.
func (p *planDoc) actionsBySlot() map[string]string {
	m := map[string]string{}
	for _, a := range p.Actions {
		m[a.Slot] = a.Verb
	}
	return m
}

func parsePlan(data string) (*planDoc, error) {
	var p planDoc
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		return nil, fmt.Errorf("plan --json: %v\n%s", err, tail(data, 2000))
	}
	return &p, nil
}

// manifestDoc is the part of a host's manifest the tests read.
type manifestDoc struct {
	Slots   []string          `json:"slots"`
	Pending map[string]string `json:"pending"`
}

// readManifestFile reads a manifest; a missing one is an empty manifest
// and ok false.
func readManifestFile(path string) (m manifestDoc, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, false, fmt.Errorf("%s: %v", path, err)
	}
	return m, true, nil
}

// fileLine is how apply logs a file it wrote or removed: "imap3: updated
// /etc/cyrus/slot308/imapd.conf".
var fileLine = regexp.MustCompile(`^\S+: (created|updated|deleted) /`)

// nthLine returns a killAt.line that is true at the n-th line matching re.
func nthLine(re *regexp.Regexp, n int) func(string) bool {
	seen := 0
	return func(l string) bool {
		if re.MatchString(l) {
			seen++
		}
		return seen == n
	}
}

// loggedAction is one service action an apply says it ran.
type loggedAction struct {
	host, slot, verb string
}

// actionLine is how apply logs a service action it ran (or, with --root,
// would run): "imap3 slot308: reload ok, banner answers (…)", "imap3
// slot308: reload (not run: …)". The plan that apply prints first
// indents its lines, so they never match.
var actionLine = regexp.MustCompile(`(?m)^(\S+) (slot[0-9]+): (start|stop|restart|reload)\b(.*)$`)

// loggedActions returns the service actions an apply's output says ran,
// in order. Lines saying an action failed or was skipped do not count.
func loggedActions(out string) []loggedAction {
	var acts []loggedAction
	for _, m := range actionLine.FindAllStringSubmatch(out, -1) {
		rest := strings.TrimSpace(m[4])
		if !strings.HasPrefix(rest, "ok") && !strings.HasPrefix(rest, "(not run") {
			continue
		}
		acts = append(acts, loggedAction{host: m[1], slot: m[2], verb: m[3]})
	}
	return acts
}

// verbRank orders what a service action does to a slot's config: a
// reload re-reads the configs, a restart also re-runs the init script
// (build, addresses), a start brings up a slot that is not running.
var verbRank = map[string]int{"reload": 1, "restart": 2, "start": 2}

// satisfies reports whether verb does at least what need asks for a slot
// that is (running) or is not running. A start of a running slot does
// nothing (the init script says "already running"), and a reload of a
// slot that is not running fails; a restart does either.
func satisfies(verb, need string, running bool) bool {
	switch {
	case need == "":
		return true
	case verb == "":
		return false
	case !running:
		return verb == "start" || verb == "restart"
	case verb == "start":
		return false
	}
	return verbRank[verb] >= verbRank[need]
}

// treeFiles lists the regular files under dir, relative to it, except
// those under skip (relative paths of directories).
func treeFiles(dir string, skip ...string) (map[string]fs.FileInfo, error) {
	files := map[string]fs.FileInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(d.Name(), ".cyrplan-tmp-") {
			return nil // tmpFiles reports them
		}
		if d.IsDir() {
			if slices.Contains(skip, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = fi
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	return files, err
}

// compareTree compares a host's directory with its rendered tree (the
// rendered files hold secret markers where the host holds their values:
// secrets maps marker to value) and returns the differences. The host's
// /var/lib/cyrplan (manifest, lock, backups, roles) is cyrplan's own.
func compareTree(hostDir, renderedDir string, secrets map[string]string) ([]string, error) {
	have, err := treeFiles(hostDir, "var/lib/cyrplan")
	if err != nil {
		return nil, err
	}
	want, err := treeFiles(renderedDir)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		hfi, ok := have[p]
		if !ok {
			diffs = append(diffs, "/"+p+": missing on the host")
			continue
		}
		wdata, err := os.ReadFile(filepath.Join(renderedDir, p))
		if err != nil {
			return nil, err
		}
		for marker, value := range secrets {
			wdata = bytes.ReplaceAll(wdata, []byte(marker), []byte(value))
		}
		hdata, err := os.ReadFile(filepath.Join(hostDir, p))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(hdata, wdata) {
			diffs = append(diffs, "/"+p+": content differs from the rendered file")
		}
		if hfi.Mode() != want[p].Mode() {
			diffs = append(diffs, fmt.Sprintf("/%s: mode %v, rendered %v", p, hfi.Mode(), want[p].Mode()))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "/"+p+": on the host but not rendered")
		}
	}
	return diffs, nil
}

// tmpFiles lists the files under dir whose name starts with
// ".cyrplan-tmp-": what an interrupted atomic write leaves behind.
func tmpFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".cyrplan-tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// killSeed returns the seed of a test's random choices: CYRPLAN_KILL_SEED
// if set (to replay a failure), else a new one. The test logs it.
func killSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("CYRPLAN_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CYRPLAN_KILL_SEED=%q: %v", s, err)
		}
		return n
	}
	return rand.Uint64()
}

// problems collects what is wrong in one iteration of a kill loop, by
// kind, in the order the kinds first appear.
type problems struct {
	kinds  []string
	byKind map[string][]string
}

func (p *problems) add(kind, format string, args ...any) {
	if p.byKind == nil {
		p.byKind = map[string][]string{}
	}
	if _, ok := p.byKind[kind]; !ok {
		p.kinds = append(p.kinds, kind)
	}
	p.byKind[kind] = append(p.byKind[kind], fmt.Sprintf(format, args...))
}

func (p *problems) empty() bool { return len(p.kinds) == 0 }

// String says how many problems of each kind there are, with the first
// maxShown of each.
func (p *problems) String() string {
	var b strings.Builder
	for _, k := range p.kinds {
		list := p.byKind[k]
		fmt.Fprintf(&b, "\n  %s: %d", k, len(list))
		for i, x := range list {
			if i == maxShown {
				fmt.Fprintf(&b, "\n      ... and %d more", len(list)-maxShown)
				break
			}
			b.WriteString("\n      " + strings.ReplaceAll(x, "\n", "\n        "))
		}
	}
	return b.String()
}

// maxShown is how many problems of one kind a report shows.
const maxShown = 6

// hostProc is a process of a simulated host, seen from this machine.
type hostProc struct {
	pid   int // in this machine's PID namespace
	nspid int // in the host's
	ppid  int // in this machine's PID namespace
	start time.Time
	argv  []string
}

func (p hostProc) name() string {
	if len(p.argv) == 0 {
		return ""
	}
	return filepath.Base(p.argv[0])
}

func (p hostProc) cmdline() string { return strings.Join(p.argv, " ") }

// clockTick is the resolution of a process's start time in /proc (USER_HZ
// is 100 on Linux).
const clockTick = 10 * time.Millisecond

// bootTime returns when this machine booted, on the wall clock: process
// start times in /proc count from then (CLOCK_BOOTTIME).
func bootTime() (time.Time, error) {
	var ts syscall.Timespec
	const clockBoottime = 7
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return time.Time{}, e
	}
	return time.Now().Add(-time.Duration(ts.Nano())), nil
}

// hostProcs lists the processes of host h: those in the PID namespace of
// its PID 1.
func hostProcs(h *testhosts.Host) ([]hostProc, error) {
	// Host.Path("/") is /proc/<PID 1>/root.
	init := filepath.Dir(h.Path("/"))
	ns, err := os.Readlink(filepath.Join(init, "ns/pid"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", h.Name, err)
	}
	boot, err := bootTime()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []hostProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name()
		if l, err := os.Readlink(dir + "/ns/pid"); err != nil || l != ns {
			continue
		}
		stat, err1 := os.ReadFile(dir + "/stat")
		status, err2 := os.ReadFile(dir + "/status")
		cmdline, err3 := os.ReadFile(dir + "/cmdline")
		if err1 != nil || err2 != nil || err3 != nil {
			continue // gone meanwhile
		}
		// After the command name in parentheses: state, ppid, ... and
		// starttime, the 22nd field, in clock ticks since boot.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 20 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ticks, _ := strconv.ParseInt(f[19], 10, 64)
		p := hostProc{pid: pid, ppid: ppid, start: boot.Add(time.Duration(ticks) * clockTick)}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
				ids := strings.Fields(rest)
				p.nspid, _ = strconv.Atoi(ids[len(ids)-1])
			}
		}
		for _, a := range strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00") {
			if a != "" {
				p.argv = append(p.argv, a)
			}
		}
		out = append(out, p)
	}
	return out, nil
}
