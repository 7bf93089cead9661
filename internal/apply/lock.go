package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// LockInfo is what a host's lock file says about its holder.
type LockInfo struct {
	Holder  string    `json:"holder"`  // user@machine
	Machine string    `json:"machine"` // where cyrplan runs
	PID     int       `json:"pid"`
	Time    time.Time `json:"time"`
	ApplyID string    `json:"applyId"`
}

// NewLockInfo describes this process as a lock holder.
func NewLockInfo(applyID string, now time.Time) LockInfo {
	machine, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return LockInfo{Holder: name + "@" + machine, Machine: machine, PID: os.Getpid(), Time: now.UTC(), ApplyID: applyID}
}

// LockedError is returned when another apply holds a host's lock.
type LockedError struct {
	Host string
	Info LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by %s (pid %d) since %s, apply %s; if no apply is running there, run: cyrplan unlock %s",
		e.Host, e.Info.Holder, e.Info.PID, e.Info.Time.Format(time.RFC3339), e.Info.ApplyID, e.Host)
}

// Lock takes h's lock. A lock left by a cyrplan process of this machine
// that no longer runs (killed, say) is stale and is broken, with a note
// on warn; any other lock is a *LockedError.
func Lock(ctx context.Context, h transport.Host, info LockInfo, warn func(string)) error {
	if err := h.MkdirAll(ctx, render.StateDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	data, _ := json.Marshal(info)
	for attempt := 0; ; attempt++ {
		err := h.CreateExclusive(ctx, state.LockPath, append(data, '\n'), 0o644)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return err
		}
		held, rerr := readLock(ctx, h)
		if rerr != nil {
			return rerr
		}
		if held.Machine != info.Machine || processAlive(held.PID) {
			return &LockedError{Host: h.Name(), Info: held}
		}
		warn(fmt.Sprintf("%s: breaking the stale lock of apply %s (pid %d on this machine is gone)", h.Name(), held.ApplyID, held.PID))
		if err := h.Remove(ctx, state.LockPath); err != nil {
			return err
		}
	}
}

// Unlock releases h's lock if it is the one info took.
func Unlock(ctx context.Context, h transport.Host, info LockInfo) error {
	held, err := readLock(ctx, h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if held.ApplyID != info.ApplyID {
		return fmt.Errorf("%s: the lock now belongs to apply %s; left in place", h.Name(), held.ApplyID)
	}
	return h.Remove(ctx, state.LockPath)
}

// BreakLock removes h's lock whoever holds it, and says whose it was.
func BreakLock(ctx context.Context, h transport.Host) (*LockInfo, error) {
	held, err := readLock(ctx, h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &held, h.Remove(ctx, state.LockPath)
}

func readLock(ctx context.Context, h transport.Host) (LockInfo, error) {
	var info LockInfo
	data, err := h.ReadFile(ctx, state.LockPath)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("%s:%s: unreadable lock (%v); remove it with cyrplan unlock %s", h.Name(), state.LockPath, err, h.Name())
	}
	return info, nil
}

// processAlive reports whether pid runs on this machine (and is not a zombie).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2] != 'Z'
		}
	}
	return true
}
