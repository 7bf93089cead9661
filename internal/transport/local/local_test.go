package local_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
	"github.com/cyrplan/cyrplan/internal/transport/transporttest"
)

// resolvers are the two ways a Host resolves paths: openat2, and the
// os.Root alone, as on a kernel without openat2. The tests that check
// what a path can reach run with both.
var resolvers = []struct {
	name string
	new  func(root, name string) *local.Host
}{
	{"openat2", local.New},
	{"root", local.NewThroughRoot},
}

func TestConformance(t *testing.T) {
	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) {
			transporttest.Run(t, func(t *testing.T) transporttest.Fixture {
				root := t.TempDir()
				dir := filepath.Join(root, "imap6", "work")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				return transporttest.Fixture{Host: r.new(root, "imap6"), Dir: "/work", LocalDir: dir}
			})
		})
	}
}

// TestLayout checks that host paths land under ROOT/NAME.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	h := local.New(root, "imap6")
	ctx := t.Context()
	if err := h.MkdirAll(ctx, "/etc/cyrus", 0o755, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFile(ctx, h, "/etc/cyrus/imapd.conf", []byte("x\n"), 0o640, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "imap6", "etc", "cyrus", "imapd.conf"))
	if err != nil || string(got) != "x\n" {
		t.Errorf("ROOT/imap6/etc/cyrus/imapd.conf = %q, %v; want %q", got, err, "x\n")
	}
}

// TestMissingHostDir checks that a host without a directory reads as
// empty and gets one on the first write.
func TestMissingHostDir(t *testing.T) {
	root := t.TempDir()
	h := local.New(root, "imap6")
	ctx := t.Context()
	if _, err := h.ReadFile(ctx, "/etc/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile = %v; want fs.ErrNotExist", err)
	}
	if err := h.Remove(ctx, "/etc/x"); err != nil {
		t.Errorf("Remove = %v; want nil", err)
	}
	if err := transport.WriteFile(ctx, h, "/x", []byte("x"), 0o644, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "imap6", "x")); err != nil {
		t.Error(err)
	}
}

// TestEscape checks that no path reaches outside the host directory.
func TestEscape(t *testing.T) {
	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) { testEscape(t, r.new) })
	}
}

func testEscape(t *testing.T, newHost func(root, name string) *local.Host) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "imap6"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "imap6", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../", filepath.Join(root, "imap6", "up")); err != nil {
		t.Fatal(err)
	}
	h := newHost(root, "imap6")
	ctx := t.Context()
	for _, p := range []string{"/../escaped", "/etc/../../escaped", "/link/escaped", "/up/escaped"} {
		err := transport.WriteFile(ctx, h, p, []byte("x"), 0o644, transport.Owner{})
		if err == nil {
			t.Errorf("WriteFile(%s) succeeded", p)
			continue
		}
		if !strings.Contains(err.Error(), "imap6") || !strings.Contains(err.Error(), p) {
			t.Errorf("WriteFile(%s) error %q does not name the host and path", p, err)
		}
	}
	for _, d := range []string{root, outside} {
		if _, err := os.Stat(filepath.Join(d, "escaped")); err == nil {
			t.Errorf("a file escaped to %s", d)
		}
	}
	// ".." that stays inside is fine, resolved as the kernel does:
	// "/a/.." needs /a.
	if err := transport.WriteFile(ctx, h, "/a/../b", []byte("x"), 0o644, transport.Owner{}); err == nil {
		t.Error("WriteFile(/a/../b) succeeded though /a does not exist")
	}
	if err := h.MkdirAll(ctx, "/a", 0o755, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFile(ctx, h, "/a/../b", []byte("x"), 0o644, transport.Owner{}); err != nil {
		t.Error(err)
	}
}

// TestRootOpenedOnce checks that the host directory is opened once: once
// replaced by a link to elsewhere, the Host still works in the directory
// it opened, and nothing elsewhere is touched.
func TestRootOpenedOnce(t *testing.T) {
	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) { testRootOpenedOnce(t, r.new) })
	}
}

func testRootOpenedOnce(t *testing.T, newHost func(root, name string) *local.Host) {
	root, outside := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "imap6")
	ctx := t.Context()
	for _, d := range []string{filepath.Join(dir, "etc"), filepath.Join(outside, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "etc", "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHost(root, "imap6")
	defer h.Close()
	if err := transport.WriteFile(ctx, h, "/etc/a", []byte("a"), 0o644, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReadFile(ctx, "/etc/secret"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(/etc/secret) = %v; want fs.ErrNotExist, from the directory opened", err)
	}
	if _, err := h.Lstat(ctx, "/etc/secret"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(/etc/secret) = %v; want fs.ErrNotExist", err)
	}
	if got, err := h.ReadFile(ctx, "/etc/a"); err != nil || string(got) != "a" {
		t.Errorf("ReadFile(/etc/a) = %q, %v; want %q", got, err, "a")
	}
	if err := transport.WriteFile(ctx, h, "/etc/b", []byte("b"), 0o644, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := h.MkdirAll(ctx, "/etc/d", 0o755, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := h.CreateExclusive(ctx, "/etc/lock", []byte("l"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"b", "d", "lock"} {
		if _, err := os.Lstat(filepath.Join(dir+".old", "etc", f)); err != nil {
			t.Errorf("/etc/%s is not in the directory opened: %v", f, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(outside, "etc"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "secret" {
		t.Errorf("the directory the link points to holds %v (%v); want only secret", entries, err)
	}
}

// TestSync checks that WriteFiles leaves its renames to Sync, which
// has nothing left to do after it; CreateExclusive syncs at once.
func TestSync(t *testing.T) {
	root := t.TempDir()
	h := local.New(root, "imap6")
	defer h.Close()
	ctx := t.Context()
	if err := h.MkdirAll(ctx, "/b/c", 0o755, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if h.Dirty() {
		t.Error("MkdirAll left something to sync")
	}
	files := []transport.File{{Path: "/b/c/1", Data: []byte("1"), Mode: 0o644}, {Path: "/top", Data: []byte("t"), Mode: 0o600}}
	if err := h.WriteFiles(ctx, files); err != nil {
		t.Fatal(err)
	}
	if !h.Dirty() {
		t.Error("after WriteFiles, nothing to sync")
	}
	if err := h.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Dirty() {
		t.Error("after Sync, still something to sync")
	}
	if err := h.CreateExclusive(ctx, "/b/lock", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h.Dirty() {
		t.Error("after CreateExclusive, something to sync")
	}
}

// TestReadGrows checks that a file growing between the fstat of ReadFile
// and its read is read whole, up to MaxReadSize.
func TestReadGrows(t *testing.T) {
	root := t.TempDir()
	h := local.New(root, "imap6")
	defer h.Close()
	ctx := t.Context()
	f := filepath.Join(root, "imap6", "f")
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	var grow []byte
	defer local.SetReadHook(func() {
		a, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		if _, err := a.Write(grow); err != nil {
			t.Error(err)
		}
	})()
	for _, tt := range []struct {
		size int64
		grow string
		err  error
	}{
		{4, "4567", nil},
		{4, strings.Repeat("x", 100<<10), nil},
		{transport.MaxReadSize - 1, "x", nil},
		{transport.MaxReadSize, "x", transport.ErrTooLarge},
		{transport.MaxReadSize - 1, strings.Repeat("x", 100<<10), transport.ErrTooLarge},
	} {
		if err := os.WriteFile(f, []byte("0123"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(f, tt.size); err != nil {
			t.Fatal(err)
		}
		grow = []byte(tt.grow)
		got, err := h.ReadFile(ctx, "/f")
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%d bytes growing by %d: ReadFile = %d bytes, %v; want %v", tt.size, len(tt.grow), len(got), err, tt.err)
			}
			continue
		}
		if err != nil || int64(len(got)) != tt.size+int64(len(tt.grow)) || !strings.HasSuffix(string(got), tt.grow) {
			t.Errorf("%d bytes growing by %d: ReadFile = %d bytes, %v; want them all", tt.size, len(tt.grow), len(got), err)
		}
	}
}

// TestNotRegular checks that ReadFile opens nothing but a regular file of
// a sane size, and that MkdirAll follows no link.
func TestNotRegular(t *testing.T) {
	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) { testNotRegular(t, r.new) })
	}
}

func testNotRegular(t *testing.T, newHost func(root, name string) *local.Host) {
	root := t.TempDir()
	dir := filepath.Join(root, "imap6")
	h := newHost(root, "imap6")
	defer h.Close()
	ctx := t.Context()
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, transport.MaxReadSize+1); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]error{
		"/link": transport.ErrNotRegular, "/fifo": transport.ErrNotRegular, "/d": transport.ErrNotRegular,
		"/": transport.ErrNotRegular, "/d/..": transport.ErrNotRegular, "/d/": transport.ErrNotRegular,
		"/big": transport.ErrTooLarge, "/d/missing/..": fs.ErrNotExist,
	} {
		if _, err := h.ReadFile(ctx, p); !errors.Is(err, want) {
			t.Errorf("ReadFile(%s) = %v; want %v", p, err, want)
		}
	}
	if err := h.MkdirAll(ctx, "/dirlink", 0o700, transport.Owner{}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("MkdirAll(/dirlink) = %v; want an error saying it is a symbolic link", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "d")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the link's target: %v, %v; want mode 0755 unchanged", fi, err)
	}
	for _, p := range []string{"/d/", "/d/.", "/d/.."} {
		if err := transport.WriteFile(ctx, h, p, []byte("x"), 0o644, transport.Owner{}); err == nil {
			t.Errorf("WriteFile(%s) succeeded", p)
		}
	}
	if err := transport.WriteFile(ctx, h, "/link", []byte("new"), 0o644, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "target")); err != nil || string(got) != "x" {
		t.Errorf("WriteFile over a link changed its target: %q, %v", got, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "d"))
	if err != nil || len(entries) != 0 {
		t.Errorf("/d holds %v, %v; want nothing (no stray temporary file)", entries, err)
	}
}

// TestSpecialModes checks that setuid, setgid and sticky bits are set.
func TestSpecialModes(t *testing.T) {
	for _, r := range resolvers {
		t.Run(r.name, func(t *testing.T) { testSpecialModes(t, r.new) })
	}
}

func testSpecialModes(t *testing.T, newHost func(root, name string) *local.Host) {
	h := newHost(t.TempDir(), "imap6")
	defer h.Close()
	ctx := t.Context()
	mode := fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o750
	if err := h.MkdirAll(ctx, "/a/b", mode, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := h.Stat(ctx, "/a/b"); err != nil || fi.Mode != fs.ModeDir|mode {
		t.Errorf("Stat(/a/b) = %v, %v; want mode %v", fi.Mode, err, fs.ModeDir|mode)
	}
	if err := transport.WriteFile(ctx, h, "/a/f", nil, fs.ModeSetgid|0o640, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := h.Stat(ctx, "/a/f"); err != nil || fi.Mode != fs.ModeSetgid|0o640 {
		t.Errorf("Stat(/a/f) = %v, %v; want mode %v", fi.Mode, err, fs.ModeSetgid|0o640)
	}
}

// TestClosed checks that a closed Host does nothing, even one that never
// opened its directory.
func TestClosed(t *testing.T) {
	root := t.TempDir()
	ctx := t.Context()
	used := local.New(root, "imap6")
	if err := transport.WriteFile(ctx, used, "/x", []byte("x"), 0o644, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := used.Close(); err != nil {
		t.Fatal(err)
	}
	unused := local.New(root, "imap7")
	if err := unused.Close(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*local.Host{used, unused} {
		if _, err := h.ReadFile(ctx, "/x"); !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s: ReadFile after Close = %v; want os.ErrClosed", h.Name(), err)
		}
		if err := transport.WriteFile(ctx, h, "/y", []byte("y"), 0o644, transport.Owner{}); !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s: WriteFile after Close = %v; want os.ErrClosed", h.Name(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "imap7")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a closed Host created its directory: %v", err)
	}
}
