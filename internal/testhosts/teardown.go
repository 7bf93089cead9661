package testhosts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc identifies a process: its pid and its start time, so that a reused
// pid is never mistaken for it.
type proc struct {
	pid   int
	start uint64
}

// procStat returns the start time (in clock ticks after boot) and the state
// letter of process pid.
func procStat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	start, err = strconv.ParseUint(fs[19], 10, 64) // field 22 of proc(5)
	return start, fs[0][0], err
}

// is tells whether p is alive and is one of ours: its command line names
// boot (a fleet's boot.sh; nsenter's command line names it too, in the
// instant before it runs it).
func (p proc) is(boot string) bool {
	start, state, err := procStat(p.pid)
	if err != nil || start != p.start || state == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
	return err == nil && bytes.Contains(cmdline, []byte(boot))
}

// gone tells whether p has exited. A dead PID 1 becomes a zombie only once
// every other process of its PID namespace is gone.
func (p proc) gone() bool {
	start, state, err := procStat(p.pid)
	return err != nil || start != p.start || state == 'Z'
}

// killAndWait sends SIGKILL to those of procs that are ours (see proc.is)
// and waits until they are gone.
func killAndWait(boot string, procs []proc) error {
	var killed []proc
	for _, p := range procs {
		if p.pid > 0 && p.is(boot) {
			if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill %d: %w", p.pid, err)
			}
			killed = append(killed, p)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range killed {
		for !p.gone() {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d still there 10 s after SIGKILL", p.pid)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// netnsMembers lists the processes in the named network namespaces (by
// inode, see netnsInodes) with their command lines.
func netnsMembers(inodes map[uint64]bool) (map[proc]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	members := map[proc]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Processes come and go while we look: errors mean "gone".
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 64)
		if err != nil || !inodes[ino] {
			continue
		}
		start, _, err := procStat(pid)
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		members[proc{pid, start}] = string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '}))
	}
	return members, nil
}

// netnsInodes returns the inodes of the named network namespaces whose
// names start with prefix.
func netnsInodes(prefix string) (map[uint64]bool, error) {
	names, err := netnsNames()
	if err != nil {
		return nil, err
	}
	inodes := map[uint64]bool{}
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/run/netns/"+n, &st); err != nil {
			return nil, err
		}
		inodes[st.Ino] = true
	}
	return inodes, nil
}

// destroy tears down what the fleet in dir made on subnet slot, whose lock is
// held: it kills the recorded PID 1s of its hosts and any other process of
// its network namespaces that runs its boot.sh (a PID 1 not recorded yet),
// then deletes its veths, network namespaces, bridge and safety route. It
// never kills a process that is not a host's PID 1; such processes make it
// fail.
func destroy(slot int, dir string, recorded []proc) error {
	boot := filepath.Join(dir, "boot.sh")
	bridge := fmt.Sprintf("cyrth%d", slot)
	prefix := bridge + "-"
	if err := killAndWait(boot, recorded); err != nil {
		return err
	}
	inodes, err := netnsInodes(prefix)
	if err != nil {
		return err
	}
	members, err := netnsMembers(inodes)
	if err != nil {
		return err
	}
	var ours []proc
	for p := range members {
		ours = append(ours, p)
	}
	if err := killAndWait(boot, ours); err != nil {
		return err
	}
	// What is left (nsenter of an Exec, say) goes by itself within moments.
	deadline := time.Now().Add(3 * time.Second)
	for len(members) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if members, err = netnsMembers(inodes); err != nil {
			return err
		}
	}
	var errs []error
	for p, cmdline := range members {
		errs = append(errs, fmt.Errorf("process %d (%s) is in a network namespace of the fleet but was not started by it; not killed", p.pid, cmdline))
	}

	var cmds []string
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, prefix) { // veths: their peers (eth0) go with them
			cmds = append(cmds, "link del "+i.Name)
		}
	}
	names, err := netnsNames()
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			cmds = append(cmds, "netns del "+n)
		}
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		cmds = append(cmds, "link del "+bridge)
	}
	route := fmt.Sprintf("unreachable 10.200.%d.0/24 metric 9999", slot)
	out, err := ipOutput("-4", "route", "show", "table", "main")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == route {
			cmds = append(cmds, "route del "+route) // last: it guards the subnet until the bridge is gone
		}
	}
	if err := ipBatch(cmds); err != nil {
		return err
	}
	snap, err := takeSnapshot()
	if err != nil {
		return err
	}
	if what := snap.conflict(slot); what != "" {
		errs = append(errs, fmt.Errorf("%s left on 10.200.%d.0/24 after teardown", what, slot))
	}
	return errors.Join(errs...)
}

// removeFleetDir removes a fleet's directory, after checking that it is one
// (it has a state file) and that nothing is mounted below it.
func removeFleetDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("not removing %s: %w", dir, err)
	}
	mounts, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer mounts.Close()
	sc := bufio.NewScanner(mounts)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && (fs[4] == dir || strings.HasPrefix(fs[4], dir+"/")) {
			return fmt.Errorf("not removing %s: %s is mounted", dir, fs[4])
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// teardownStale tears down a fleet whose process died, on slot, whose lock
// is held; dir may be gone already.
func teardownStale(slot int, dir string) error {
	st, stateErr := loadState(dir)
	if stateErr != nil && !errors.Is(stateErr, fs.ErrNotExist) {
		return stateErr
	}
	var recorded []proc
	for _, h := range st.Hosts {
		recorded = append(recorded, proc{h.PID, h.Start})
	}
	if err := destroy(slot, dir, recorded); err != nil {
		return err
	}
	if stateErr != nil { // no state file: the directory is gone, or not ours
		return nil
	}
	return removeFleetDir(dir)
}

// Close tears the fleet down: it kills every host with its PID namespace
// (so every process started in it), deletes the network namespaces, veths,
// bridge and route the fleet made, releases its subnet and removes Dir. If
// something is left, Dir and the subnet's reservation stay (for a later
// Teardown or stale cleanup) and the error says what. Only the first call
// does the work; later ones return its result.
func (f *Fleet) Close() error {
	f.closed.Do(func() { f.cerr = f.close() })
	return f.cerr
}

func (f *Fleet) close() error {
	var recorded []proc
	for _, h := range f.hosts {
		h.mu.Lock()
		if h.init != nil {
			recorded = append(recorded, h.init.proc)
		}
		h.mu.Unlock()
	}
	if f.slot < 0 {
		return os.RemoveAll(f.Dir) // nothing was made yet
	}
	lock, err := lockSlot(f.slot, true)
	if err != nil {
		return err
	}
	o, err := readOwner(lock)
	if err == nil && o.Dir != f.Dir {
		err = fmt.Errorf("subnet %s.0/24 is recorded for %q, not for this fleet: only its hosts were killed", f.Subnet, o.Dir)
	}
	if err != nil {
		return errors.Join(err, killAndWait(f.bootPath(), recorded), lock.Close())
	}
	if err := destroy(f.slot, f.Dir, recorded); err != nil {
		return errors.Join(err, lock.Close())
	}
	if err := releaseSlot(lock); err != nil {
		return err
	}
	return removeFleetDir(f.Dir)
}

// Teardown tears down the fleet in dir, started by Start in this or another
// process (the testhosts command's "down"), like Fleet.Close.
func Teardown(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	names := make([]string, len(st.Hosts))
	for i, h := range st.Hosts {
		names[i] = h.Name
	}
	f := newFleet(dir, names, nil)
	if st.Slot >= 0 {
		f.setSlot(st.Slot)
	}
	for i, h := range st.Hosts {
		if h.PID != 0 {
			f.hosts[i].init = &boot{proc: proc{h.PID, h.Start}}
		}
	}
	return f.Close()
}
