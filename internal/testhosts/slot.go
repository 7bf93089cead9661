package testhosts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSlot is the last subnet 10.200.maxSlot.0/24 a fleet may take.
const maxSlot = 250

var errBusy = errors.New("slot lock busy")

func lockPath(slot int) string { return fmt.Sprintf("/run/cyrplan-testhosts-%d.lock", slot) }

// owner is the content of a slot's lock file: the fleet using the subnet.
type owner struct {
	Dir   string `json:"dir"`
	PID   int    `json:"pid,omitempty"`   // process owning the fleet; 0: persistent
	Start uint64 `json:"start,omitempty"` // its start time, see procStat
}

// inUse tells whether the fleet recorded in o may still be in use: its
// process lives, or it is persistent and its state file exists.
func (o owner) inUse() bool {
	if o.Dir == "" {
		return false
	}
	if o.PID == 0 {
		_, err := os.Stat(filepath.Join(o.Dir, stateFile))
		return !errors.Is(err, fs.ErrNotExist)
	}
	start, state, err := procStat(o.PID)
	return err == nil && start == o.Start && state != 'Z'
}

// lockSlot opens and exclusively locks the lock file of slot. Without wait it
// returns errBusy at once if another holds the lock. Closing the file
// releases the lock.
func lockSlot(slot int, wait bool) (*os.File, error) {
	path := lockPath(slot)
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, errBusy
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The previous holder may have removed the file (releaseSlot) after
		// we opened it: the lock only counts on the file the path names now.
		var held, now syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, err
		}
		if err := syscall.Stat(path, &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return f, nil
		}
		f.Close()
	}
}

func readOwner(lock *os.File) (owner, error) {
	var o owner
	if _, err := lock.Seek(0, io.SeekStart); err != nil {
		return o, err
	}
	b, err := io.ReadAll(lock)
	if err != nil || len(b) == 0 {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("%s: %w", lock.Name(), err)
	}
	return o, nil
}

func writeOwner(lock *os.File, o owner) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := lock.Truncate(0); err != nil {
		return err
	}
	_, err = lock.WriteAt(b, 0)
	return err
}

// releaseSlot removes the lock file of a slot whose lock is held, then
// releases the lock.
func releaseSlot(lock *os.File) error {
	return errors.Join(os.Remove(lock.Name()), lock.Close())
}

// claimSlot takes the first free subnet for the fleet in dir and records
// the fleet as its owner (ownerPID 0: persistent). A subnet is free when its
// lock is not held, its recorded owner is gone (its leftovers are torn down
// first) and nothing on this machine uses an address, route or name of it.
// Before that it tears down every stale fleet it finds, so that fleets of
// killed test binaries do not pile up.
func claimSlot(dir string, ownerPID int, logf func(string, ...any)) (int, error) {
	o := owner{Dir: dir, PID: ownerPID}
	if ownerPID != 0 {
		var err error
		if o.Start, _, err = procStat(ownerPID); err != nil {
			return -1, err
		}
	}
	if err := sweepStale(logf); err != nil {
		return -1, err
	}
	snap, err := takeSnapshot()
	if err != nil {
		return -1, err
	}
	for slot := 0; slot <= maxSlot; slot++ {
		lock, err := lockSlot(slot, false)
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return -1, err
		}
		free, tornDown := reclaim(lock, slot, logf)
		if tornDown {
			if snap, err = takeSnapshot(); err != nil {
				return -1, errors.Join(err, lock.Close())
			}
		}
		switch {
		case !free:
			err = lock.Close()
		case snap.conflict(slot) != "": // used by something else: nothing to record
			err = releaseSlot(lock)
		default:
			return slot, errors.Join(writeOwner(lock, o), lock.Close())
		}
		if err != nil {
			return -1, err
		}
	}
	return -1, errors.New("no free subnet among 10.200.0.0/24 .. 10.200.250.0/24")
}

// sweepStale tears down the fleets recorded in lock files whose owners are
// gone, and removes those lock files.
func sweepStale(logf func(string, ...any)) error {
	paths, err := filepath.Glob("/run/cyrplan-testhosts-*.lock")
	if err != nil {
		return err
	}
	for _, p := range paths {
		var slot int
		if _, err := fmt.Sscanf(filepath.Base(p), "cyrplan-testhosts-%d.lock", &slot); err != nil || lockPath(slot) != p {
			continue
		}
		lock, err := lockSlot(slot, false)
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return err
		}
		if free, _ := reclaim(lock, slot, logf); free {
			err = releaseSlot(lock)
		} else {
			err = lock.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reclaim tells whether the subnet of slot, whose lock is held, is free of
// fleets: no owner is recorded, or the recorded one is gone and its
// leftovers could be torn down (tornDown).
func reclaim(lock *os.File, slot int, logf func(string, ...any)) (free, tornDown bool) {
	prev, err := readOwner(lock)
	if err != nil {
		logf("testhosts: skipping subnet 10.200.%d.0/24: %v", slot, err)
		return false, false
	}
	if prev.Dir == "" {
		return true, false
	}
	if prev.inUse() {
		return false, false
	}
	logf("testhosts: tearing down stale fleet %s on 10.200.%d.0/24", prev.Dir, slot)
	if err := teardownStale(slot, prev.Dir); err != nil {
		logf("testhosts: skipping subnet 10.200.%d.0/24: stale fleet %s: %v", slot, prev.Dir, err)
		return false, true
	}
	return true, true
}

// netSnapshot is what the root network namespace uses: interface names and
// IPv4 addresses, IPv4 routes of all tables, and named network namespaces.
type netSnapshot struct {
	links  []string
	addrs  []netip.Prefix
	routes []netip.Prefix
	netns  []string
}

func takeSnapshot() (*netSnapshot, error) {
	s := &netSnapshot{}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		s.links = append(s.links, i.Name)
		addrs, err := i.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				s.addrs = append(s.addrs, p)
			}
		}
	}
	out, err := ipOutput("-4", "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		if p, ok := routeDest(l); ok {
			s.routes = append(s.routes, p)
		}
	}
	s.netns, err = netnsNames()
	return s, err
}

// routeDest parses the destination of a line of "ip route show".
func routeDest(line string) (netip.Prefix, bool) {
	fs := strings.Fields(line)
	if len(fs) > 1 {
		switch fs[0] {
		case "unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast":
			fs = fs[1:]
		}
	}
	if len(fs) == 0 || fs[0] == "default" {
		return netip.Prefix{}, false
	}
	if p, err := netip.ParsePrefix(fs[0]); err == nil {
		return p, true
	}
	if a, err := netip.ParseAddr(fs[0]); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func netnsNames() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

// conflict says what on the machine uses slot's subnet or names, "" if
// nothing does. Wider routes (e.g. 10.0.0.0/8) do not conflict: the fleet's
// /24 is more specific.
func (s *netSnapshot) conflict(slot int) string {
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.200.%d.0/24", slot))
	bridge := fmt.Sprintf("cyrth%d", slot)
	for _, a := range s.addrs {
		if subnet.Contains(a.Addr()) {
			return "address " + a.String()
		}
	}
	for _, r := range s.routes {
		if r.Bits() >= subnet.Bits() && subnet.Contains(r.Addr()) {
			return "route " + r.String()
		}
	}
	for _, l := range s.links {
		if l == bridge || strings.HasPrefix(l, bridge+"-") {
			return "interface " + l
		}
	}
	for _, n := range s.netns {
		if strings.HasPrefix(n, bridge+"-") {
			return "network namespace " + n
		}
	}
	return ""
}
