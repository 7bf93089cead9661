package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/cyrplan/cyrplan/internal/hostpath"
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

// lockPath is where a host's lock is.
const lockPath = hostpath.Lock

// CorruptLockError is returned when a host's lock cannot be read: an
// apply killed between creating the lock and writing it leaves it empty.
type CorruptLockError struct {
	Host   string
	Reason string // "empty", or what is wrong with its content
}

func (e *CorruptLockError) Error() string {
	return fmt.Sprintf("%s: the lock %s is unreadable (%s), as an apply killed while taking it leaves it; if no apply is running there, run: cyrplan unlock %s",
		e.Host, lockPath, e.Reason, e.Host)
}

// Lock takes h's lock. A lock left by a cyrplan process of this machine
// that no longer runs (killed, say) is stale and is broken, with a note
// on warn; any other lock is a *LockedError, and one that cannot be read
// a *CorruptLockError. Of applies that take or break the lock at once,
// exactly one gets it.
func Lock(ctx context.Context, h transport.Host, info LockInfo, warn func(string)) error {
	if err := h.MkdirAll(ctx, hostpath.StateDir, 0o755, transport.Owner{}); err != nil {
		return err
	}
	data, _ := json.Marshal(info)
	data = append(data, '\n')
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err := h.CreateExclusive(ctx, lockPath, data, 0o644)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			return err
		}
		held, raw, err := readLockSettled(ctx, h)
		if errors.Is(err, fs.ErrNotExist) {
			if attempt < attempts {
				continue // released meanwhile
			}
			return fmt.Errorf("%s: could not take the lock %s: other applies kept taking and releasing it; try again", h.Name(), lockPath)
		}
		if err != nil {
			return err
		}
		if !stale(held, info) {
			return &LockedError{Host: h.Name(), Info: held}
		}
		if attempt == attempts {
			return breakingError(h, held, raw)
		}
		won, err := breakStale(ctx, h, raw, data)
		if err != nil {
			return err
		}
		if won {
			warn(fmt.Sprintf("%s: breaking the stale lock of apply %s (pid %d on this machine is gone)", h.Name(), held.ApplyID, held.PID))
			return nil
		}
		// Another apply is breaking it: see who holds it in a moment.
		if err := sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
			return err
		}
	}
}

// breakingError says that another apply has begun breaking the stale
// lock held (whose content is raw) and has not finished: it runs, or it
// was killed meanwhile.
func breakingError(h transport.Host, held LockInfo, raw []byte) error {
	return fmt.Errorf("%s: the stale lock %s of apply %s (pid %d on this machine is gone) is being broken by another apply (%s exists); if no apply is running there, run: cyrplan unlock %s",
		h.Name(), lockPath, held.ApplyID, held.PID, breakToken(raw), h.Name())
}

// stale reports whether held is the lock of a cyrplan of this machine
// whose process is gone.
func stale(held, me LockInfo) bool {
	return held.Machine != "" && held.Machine == me.Machine && !processAlive(held.PID)
}

// breakToken is the file whose exclusive creation entitles one apply to
// replace the stale lock whose content is raw.
func breakToken(raw []byte) string {
	sum := sha256.Sum256(raw)
	return lockPath + ".break-" + hex.EncodeToString(sum[:8])
}

// breakStale replaces the stale lock raw with data, if no other apply
// has or does. Creating the break token is what decides between applies
// that found the same stale lock; the winner then replaces the lock by
// renaming the token (which holds data) over it, so that the lock never
// goes missing meanwhile. It reports whether it replaced the lock.
func breakStale(ctx context.Context, h transport.Host, raw, data []byte) (bool, error) {
	token := breakToken(raw)
	err := h.CreateExclusive(ctx, token, data, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil // another apply is breaking it
	}
	if err != nil {
		return false, err
	}
	// Another apply may have broken it already, and its token gone with
	// the rename: only the very same stale lock is replaced.
	now, err := h.ReadFile(ctx, lockPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.Remove(ctx, token)
		return false, err
	}
	if err != nil || !bytes.Equal(now, raw) {
		return false, h.Remove(ctx, token)
	}
	if err := h.Rename(ctx, token, lockPath); err != nil {
		h.Remove(ctx, token)
		return false, err
	}
	return true, nil
}

// Unlock releases h's lock if it is the one info took.
func Unlock(ctx context.Context, h transport.Host, info LockInfo) error {
	held, _, err := readLock(ctx, h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if held.ApplyID != info.ApplyID {
		return fmt.Errorf("%s: the lock now belongs to apply %s; left in place", h.Name(), held.ApplyID)
	}
	return h.Remove(ctx, lockPath)
}

// BrokenLock is the lock BreakLock removed.
type BrokenLock struct {
	LockInfo          // its holder, if the lock could be read
	Unreadable string // why it could not be ("empty", ...), or ""
}

// BreakLock removes h's lock whoever holds it, even one it cannot read,
// and the token of an apply that was breaking it, and says whose lock it
// was; nil means h was not locked.
func BreakLock(ctx context.Context, h transport.Host) (*BrokenLock, error) {
	held, raw, err := readLock(ctx, h)
	var corrupt *CorruptLockError
	broken := &BrokenLock{LockInfo: held}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.As(err, &corrupt):
		broken.Unreadable = corrupt.Reason
	case err != nil:
		return nil, err
	}
	if err := h.Remove(ctx, lockPath); err != nil {
		return nil, err
	}
	return broken, h.Remove(ctx, breakToken(raw))
}

// readLock reads h's lock; one that cannot be read is a *CorruptLockError.
func readLock(ctx context.Context, h transport.Host) (LockInfo, []byte, error) {
	var info LockInfo
	data, err := h.ReadFile(ctx, lockPath)
	switch {
	case errors.Is(err, transport.ErrTooLarge):
		return info, nil, &CorruptLockError{Host: h.Name(), Reason: fmt.Sprintf("larger than %d bytes", transport.MaxReadSize)}
	case errors.Is(err, transport.ErrNotRegular):
		return info, nil, &CorruptLockError{Host: h.Name(), Reason: "not a regular file"}
	}
	if err != nil {
		return info, nil, err
	}
	reason := ""
	switch err := json.Unmarshal(data, &info); {
	case len(bytes.TrimSpace(data)) == 0:
		reason = "empty"
	case err != nil:
		reason = "not JSON: " + err.Error()
	case info.ApplyID == "":
		reason = "no apply id"
	default:
		return info, data, nil
	}
	return LockInfo{}, data, &CorruptLockError{Host: h.Name(), Reason: reason}
}

// readLockSettled is readLock, but a lock it cannot read is read again
// for a moment: an apply that has just created it may be writing it.
func readLockSettled(ctx context.Context, h transport.Host) (LockInfo, []byte, error) {
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		info, raw, err := readLock(ctx, h)
		var corrupt *CorruptLockError
		if !errors.As(err, &corrupt) || wait > 200*time.Millisecond {
			return info, raw, err
		}
		if err := sleep(ctx, wait); err != nil {
			return info, raw, err
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
