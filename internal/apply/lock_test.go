package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/transport/local"
)

// writeLock puts a lock file with content on the directory host imap6
// under root, as a killed apply may leave it.
func writeLock(t *testing.T, root string, content []byte) string {
	t.Helper()
	p := filepath.Join(root, "imap6", hostpath.Lock)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// staleLock is the lock of a cyrplan of this machine whose process is gone.
func staleLock(t *testing.T, applyID string) []byte {
	t.Helper()
	info := NewLockInfo(applyID, time.Now())
	info.PID = 1 << 30 // above any pid_max
	data, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return append(data, '\n')
}

// race has n contenders take imap6's lock at once, each through its own
// Host as separate processes would, and returns the apply id of each
// winner and the errors of the others.
func race(root string, round, n int) (won []string, lost []error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := local.New(root, "imap6")
			info := NewLockInfo(fmt.Sprintf("r%d-c%d", round, c), time.Now())
			<-start
			err := Lock(context.Background(), h, info, func(string) {})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, info.ApplyID)
			} else {
				lost = append(lost, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return won, lost
}

// checkRound checks that exactly one contender won, that the lock is
// its, that each loser was told who holds the lock, and that nothing but
// the lock is left beside it.
func checkRound(t *testing.T, root string, round int, won []string, lost []error) {
	t.Helper()
	if len(won) != 1 {
		t.Fatalf("round %d: %d contenders took the lock (%v); want exactly 1", round, len(won), won)
	}
	held, err := readFile(filepath.Join(root, "imap6", hostpath.Lock))
	if err != nil || held.ApplyID != won[0] {
		t.Fatalf("round %d: the lock is %+v, %v; want the winner's, %s", round, held, err, won[0])
	}
	for _, err := range lost {
		var le *LockedError
		if !errors.As(err, &le) {
			t.Errorf("round %d: a loser got %v; want a LockedError", round, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "imap6", filepath.Dir(hostpath.Lock)))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("round %d: the state directory holds %v; want only the lock", round, names)
	}
}

func readFile(p string) (LockInfo, error) {
	var info LockInfo
	data, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	return info, err
}

// Applies that find the same stale lock at once break it one at a time:
// exactly one of them holds the host afterwards.
func TestLockStaleRace(t *testing.T) {
	root := t.TempDir()
	for round := range 50 {
		writeLock(t, root, staleLock(t, fmt.Sprintf("20250301T090000Z-dead%02d", round)))
		won, lost := race(root, round, 8)
		checkRound(t, root, round, won, lost)
	}
}

// Applies that find the host free at once: one takes it, and the others
// are told who did (not that the lock, being written, is unreadable).
func TestLockFreeRace(t *testing.T) {
	root := t.TempDir()
	for round := range 50 {
		os.Remove(filepath.Join(root, "imap6", hostpath.Lock))
		won, lost := race(root, round, 8)
		checkRound(t, root, round, won, lost)
	}
}

var corruptLocks = map[string]string{
	"empty":     "",
	"truncated": `{"holder":"ops@deploy1","machine":"depl`,
	"garbage":   "\x00\x01garbage\n",
	"no holder": "{}\n",
	"null":      "null\n",
}

// An empty or corrupt lock (an apply killed between creating the lock
// and writing it) stops Lock with an error naming the host, the lock
// and cyrplan unlock, and is left in place.
func TestLockCorrupt(t *testing.T) {
	for name, content := range corruptLocks {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each waits a moment for the lock to be written
			root := t.TempDir()
			p := writeLock(t, root, []byte(content))
			err := Lock(context.Background(), local.New(root, "imap6"), NewLockInfo("a1", time.Now()), func(s string) { t.Errorf("warned %q", s) })
			if err == nil {
				t.Fatal("Lock over a corrupt lock succeeded")
			}
			for _, want := range []string{"imap6", hostpath.Lock, "unreadable", "cyrplan unlock imap6"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if data, _ := os.ReadFile(p); string(data) != content {
				t.Errorf("the lock became %q", data)
			}
		})
	}
}

// BreakLock removes a lock it cannot read, and says it could not.
func TestBreakLockCorrupt(t *testing.T) {
	for name, content := range corruptLocks {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			p := writeLock(t, root, []byte(content))
			broken, err := BreakLock(context.Background(), local.New(root, "imap6"))
			if err != nil || broken == nil {
				t.Fatalf("BreakLock = %+v, %v; want the lock removed", broken, err)
			}
			if broken.Unreadable == "" || broken.ApplyID != "" {
				t.Errorf("BreakLock = %+v; want it to say the lock was unreadable", broken)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("the lock is still there: %v", err)
			}
		})
	}
}

// BreakLock removes a break token left by an apply killed while it broke
// a stale lock, which would otherwise stop every later apply.
func TestBreakLockToken(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	h := local.New(root, "imap6")
	stale := staleLock(t, "20250301T090000Z-dead00")
	writeLock(t, root, stale)
	token := breakToken(stale)
	if err := h.CreateExclusive(ctx, token, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Lock(ctx, h, NewLockInfo("a1", time.Now()), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "cyrplan unlock imap6") {
		t.Fatalf("Lock while a break of the stale lock is under way = %v; want an error saying cyrplan unlock imap6", err)
	}
	broken, err := BreakLock(ctx, h)
	if err != nil || broken == nil || broken.ApplyID != "20250301T090000Z-dead00" {
		t.Fatalf("BreakLock = %+v, %v", broken, err)
	}
	if _, err := h.Stat(ctx, token); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("break token %s left: %v", token, err)
	}
	if err := Lock(ctx, h, NewLockInfo("a1", time.Now()), func(string) {}); err != nil {
		t.Errorf("Lock after unlock = %v", err)
	}
}
