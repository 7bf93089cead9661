// Package transporttest checks that transports behave alike: Run is a
// conformance suite every transport.Host implementation passes, and
// Server is an in-process SSH and SFTP server to test against.
package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cyrplan/cyrplan/internal/transport"
)

// Fixture is one transport under test.
type Fixture struct {
	// Host is the transport under test.
	Host transport.Host

	// Dir is an existing empty directory on the host, as an absolute
	// host path. The suite touches nothing outside it.
	Dir string

	// LocalDir is Dir as seen by the test process. The suite lists it
	// to find stray temporary files, which the Host interface cannot.
	LocalDir string
}

// Run runs the conformance suite. Each subtest calls newFixture for a
// fresh Host and directory; newFixture arranges the cleanup.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	tests := []struct {
		name string
		test func(t *testing.T, f Fixture)
	}{
		{"ReadMissing", testReadMissing},
		{"Inspect", testInspect},
		{"WriteRead", testWriteRead},
		{"Overwrite", testOverwrite},
		{"Mode", testMode},
		{"StatDir", testStatDir},
		{"MkdirAll", testMkdirAll},
		{"WriteMissingParent", testWriteMissingParent},
		{"CreateExclusive", testCreateExclusive},
		{"Remove", testRemove},
		{"Rename", testRename},
		{"NoTempFiles", testNoTempFiles},
		{"WriteFiles", testWriteFiles},
		{"RelativePath", testRelativePath},
		{"Canceled", testCanceled},
		{"Concurrent", testConcurrent},
		{"Run", testRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.test(t, newFixture(t))
		})
	}
}

// ok fails the test if err is not nil.
func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, f Fixture, p string) string {
	t.Helper()
	data, err := f.Host.ReadFile(t.Context(), p)
	ok(t, err)
	return string(data)
}

func write(t *testing.T, f Fixture, p, data string, mode fs.FileMode) {
	t.Helper()
	ok(t, transport.WriteFile(t.Context(), f.Host, p, []byte(data), mode, transport.Owner{}))
}

func stat(t *testing.T, f Fixture, p string) transport.FileInfo {
	t.Helper()
	fi, err := f.Host.Stat(t.Context(), p)
	ok(t, err)
	return fi
}

func testReadMissing(t *testing.T, f Fixture) {
	p := f.Dir + "/missing"
	_, err := f.Host.ReadFile(t.Context(), p)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v; want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), f.Host.Name()) || !strings.Contains(err.Error(), p) {
		t.Errorf("error %q does not name the host %s and the path %s", err, f.Host.Name(), p)
	}
	if _, err := f.Host.Stat(t.Context(), p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(missing) = %v; want fs.ErrNotExist", err)
	}
}

// testInspect checks that Inspect describes each path as Lstat does,
// reads the regular files and nothing else, and keeps the order.
func testInspect(t *testing.T, f Fixture) {
	ctx := t.Context()
	ok(t, f.Host.MkdirAll(ctx, f.Dir+"/a/dir", 0o750, transport.Owner{}))
	write(t, f, f.Dir+"/a/file", "content\n", 0o640)
	write(t, f, f.Dir+"/empty", "", 0o600)
	ok(t, os.Symlink("file", filepath.Join(f.LocalDir, "a", "link")))
	ok(t, syscall.Mkfifo(filepath.Join(f.LocalDir, "fifo"), 0o644))
	paths := []string{f.Dir + "/a/file", f.Dir + "/missing", f.Dir + "/a/dir", f.Dir + "/a/link",
		f.Dir + "/fifo", f.Dir + "/empty", f.Dir + "/nodir/x", f.Dir + "/a/file"}
	got, err := f.Host.Inspect(ctx, paths)
	ok(t, err)
	if len(got) != len(paths) {
		t.Fatalf("Inspect of %d paths returned %d entries", len(paths), len(got))
	}
	for i, p := range paths {
		want, err := f.Host.Lstat(ctx, p)
		if errors.Is(err, fs.ErrNotExist) {
			if got[i].Exists {
				t.Errorf("Inspect(%s) = %+v; want it missing", p, got[i])
			}
			continue
		}
		ok(t, err)
		if !got[i].Exists || got[i].Info != want {
			t.Errorf("Inspect(%s) = %+v; want it as Lstat describes it, %+v", p, got[i], want)
		}
		switch {
		case want.Mode.IsRegular():
			if content := read(t, f, p); string(got[i].Data) != content {
				t.Errorf("Inspect(%s) read %q; want %q", p, got[i].Data, content)
			}
		case got[i].Data != nil:
			t.Errorf("Inspect(%s) read %q from %s", p, got[i].Data, transport.Kind(want.Mode))
		}
	}
	if _, err := f.Host.Inspect(ctx, []string{"relative"}); err == nil {
		t.Error("Inspect of a relative path succeeded")
	}
}

func testWriteRead(t *testing.T, f Fixture) {
	p := f.Dir + "/imapd.conf"
	write(t, f, p, "configdirectory: /var/lib/cyrus\n", 0o644)
	if got := read(t, f, p); got != "configdirectory: /var/lib/cyrus\n" {
		t.Errorf("read back %q", got)
	}
	fi := stat(t, f, p)
	if fi.IsDir || fi.Mode.IsDir() || !fi.Mode.IsRegular() || fi.Size != 32 {
		t.Errorf("Stat = %+v; want a regular file of 32 bytes", fi)
	}
	// Larger than one SFTP packet (32 KiB).
	big := strings.Repeat("0123456789abcdef", 10000)
	write(t, f, p, big, 0o644)
	if got := read(t, f, p); got != big {
		t.Errorf("read back %d bytes; want %d", len(got), len(big))
	}
	write(t, f, p, "", 0o644)
	if got := read(t, f, p); got != "" {
		t.Errorf("read back %q; want the empty file", got)
	}
}

func testOverwrite(t *testing.T, f Fixture) {
	p := f.Dir + "/file"
	write(t, f, p, "a long first version\n", 0o644)
	write(t, f, p, "short\n", 0o644)
	if got := read(t, f, p); got != "short\n" {
		t.Errorf("read back %q; want %q", got, "short\n")
	}
}

func testMode(t *testing.T, f Fixture) {
	p := f.Dir + "/file"
	for _, mode := range []fs.FileMode{0o600, 0o640, 0o755, 0o444, 0o644} {
		write(t, f, p, "x", mode)
		if got := stat(t, f, p).Mode; got != mode {
			t.Errorf("after WriteFile with mode %v, Stat says %v", mode, got)
		}
	}
}

func testStatDir(t *testing.T, f Fixture) {
	fi := stat(t, f, f.Dir)
	if !fi.IsDir || !fi.Mode.IsDir() {
		t.Errorf("Stat(dir) = %+v; want a directory", fi)
	}
}

func testMkdirAll(t *testing.T, f Fixture) {
	ctx := t.Context()
	p := f.Dir + "/a/b/c"
	ok(t, f.Host.MkdirAll(ctx, p, 0o750, transport.Owner{}))
	if fi := stat(t, f, p); !fi.IsDir || fi.Mode.Perm() != 0o750 {
		t.Errorf("Stat(%s) = %+v; want a directory with mode 0750", p, fi)
	}
	for _, parent := range []string{f.Dir + "/a", f.Dir + "/a/b"} {
		if fi := stat(t, f, parent); !fi.IsDir || fi.Mode.Perm() != 0o755 {
			t.Errorf("Stat(%s) = %+v; want a directory with mode 0755", parent, fi)
		}
	}
	// Again: no error, and the mode is applied to the existing directory.
	ok(t, f.Host.MkdirAll(ctx, p, 0o700, transport.Owner{}))
	if fi := stat(t, f, p); fi.Mode.Perm() != 0o700 {
		t.Errorf("after a second MkdirAll with 0700, mode is %v", fi.Mode.Perm())
	}
	if fi := stat(t, f, f.Dir+"/a"); fi.Mode.Perm() != 0o755 {
		t.Errorf("a second MkdirAll changed the parent's mode to %v", fi.Mode.Perm())
	}
	write(t, f, f.Dir+"/file", "x", 0o644)
	if err := f.Host.MkdirAll(ctx, f.Dir+"/file/d", 0o755, transport.Owner{}); err == nil {
		t.Error("MkdirAll under a regular file succeeded")
	}
}

func testWriteMissingParent(t *testing.T, f Fixture) {
	err := transport.WriteFile(t.Context(), f.Host, f.Dir+"/missing/file", []byte("x"), 0o644, transport.Owner{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory = %v; want fs.ErrNotExist", err)
	}
}

func testCreateExclusive(t *testing.T, f Fixture) {
	ctx := t.Context()
	p := f.Dir + "/lock"
	ok(t, f.Host.CreateExclusive(ctx, p, []byte("first"), 0o600))
	err := f.Host.CreateExclusive(ctx, p, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second CreateExclusive = %v; want fs.ErrExist", err)
	}
	if got := read(t, f, p); got != "first" {
		t.Errorf("lock holds %q; want %q", got, "first")
	}
	if got := stat(t, f, p).Mode; got != 0o600 {
		t.Errorf("lock mode = %v; want 0600", got)
	}
}

func testRemove(t *testing.T, f Fixture) {
	ctx := t.Context()
	ok(t, f.Host.Remove(ctx, f.Dir+"/missing"))
	p := f.Dir + "/file"
	write(t, f, p, "x", 0o644)
	ok(t, f.Host.Remove(ctx, p))
	if _, err := f.Host.Stat(ctx, p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove, Stat = %v; want fs.ErrNotExist", err)
	}
	d := f.Dir + "/dir"
	ok(t, f.Host.MkdirAll(ctx, d, 0o755, transport.Owner{}))
	write(t, f, d+"/file", "x", 0o644)
	if err := f.Host.Remove(ctx, d); err == nil {
		t.Error("Remove of a non-empty directory succeeded")
	}
	ok(t, f.Host.Remove(ctx, d+"/file"))
	ok(t, f.Host.Remove(ctx, d))
	if _, err := f.Host.Stat(ctx, d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove of the empty directory, Stat = %v; want fs.ErrNotExist", err)
	}
}

func testRename(t *testing.T, f Fixture) {
	ctx := t.Context()
	a, b := f.Dir+"/a", f.Dir+"/b"
	write(t, f, a, "new", 0o600)
	write(t, f, b, "old", 0o644)
	ok(t, f.Host.Rename(ctx, a, b))
	if got := read(t, f, b); got != "new" {
		t.Errorf("after Rename, b holds %q; want %q", got, "new")
	}
	if got := stat(t, f, b).Mode; got != 0o600 {
		t.Errorf("after Rename, b has mode %v; want a's 0600", got)
	}
	if _, err := f.Host.Stat(ctx, a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Rename, Stat(a) = %v; want fs.ErrNotExist", err)
	}
	if err := f.Host.Rename(ctx, a, b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rename of a missing file = %v; want fs.ErrNotExist", err)
	}
}

func testNoTempFiles(t *testing.T, f Fixture) {
	ctx := t.Context()
	for i := range 5 {
		write(t, f, f.Dir+"/file", fmt.Sprint(i), 0o644)
	}
	// A write that fails at the end: a file cannot replace a non-empty
	// directory. Its temporary file must go too.
	ok(t, f.Host.MkdirAll(ctx, f.Dir+"/dir", 0o755, transport.Owner{}))
	write(t, f, f.Dir+"/dir/file", "x", 0o644)
	if err := transport.WriteFile(ctx, f.Host, f.Dir+"/dir", []byte("x"), 0o644, transport.Owner{}); err == nil {
		t.Error("WriteFile over a non-empty directory succeeded")
	}
	for _, d := range []string{f.LocalDir, filepath.Join(f.LocalDir, "dir")} {
		entries, err := os.ReadDir(d)
		ok(t, err)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), transport.TempPrefix) {
				t.Errorf("stray temporary file %s", filepath.Join(d, e.Name()))
			}
		}
	}
}

// testWriteFiles checks that WriteFiles writes every file, and that one
// that cannot be written, before the renames, changes nothing and leaves
// no temporary file.
func testWriteFiles(t *testing.T, f Fixture) {
	ctx := t.Context()
	for _, d := range []string{"/a", "/b"} {
		ok(t, f.Host.MkdirAll(ctx, f.Dir+d, 0o755, transport.Owner{}))
	}
	write(t, f, f.Dir+"/a/old", "old", 0o644)
	files := []transport.File{
		{Path: f.Dir + "/a/old", Data: []byte("new"), Mode: 0o640},
		{Path: f.Dir + "/b/new", Data: []byte("b"), Mode: 0o600},
		{Path: f.Dir + "/a/other", Data: []byte("a"), Mode: 0o644},
		{Path: f.Dir + "/missing/x", Data: []byte("x"), Mode: 0o644},
	}
	err := f.Host.WriteFiles(ctx, files)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/missing/x") {
		t.Fatalf("WriteFiles into a missing directory = %v; want fs.ErrNotExist naming /missing/x", err)
	}
	if got := read(t, f, f.Dir+"/a/old"); got != "old" {
		t.Errorf("after a failed WriteFiles, /a/old holds %q; want it unchanged", got)
	}
	for _, d := range []string{"a", "b"} {
		entries, err := os.ReadDir(filepath.Join(f.LocalDir, d))
		ok(t, err)
		for _, e := range entries {
			if e.Name() != "old" {
				t.Errorf("a failed WriteFiles left /%s/%s", d, e.Name())
			}
		}
	}
	ok(t, f.Host.WriteFiles(ctx, files[:3]))
	for _, file := range files[:3] {
		if got := read(t, f, file.Path); got != string(file.Data) {
			t.Errorf("%s holds %q; want %q", file.Path, got, file.Data)
		}
		if got := stat(t, f, file.Path).Mode; got != file.Mode {
			t.Errorf("%s has mode %v; want %v", file.Path, got, file.Mode)
		}
	}
	ok(t, f.Host.WriteFiles(ctx, nil))
}

func testRelativePath(t *testing.T, f Fixture) {
	ctx := t.Context()
	if err := transport.WriteFile(ctx, f.Host, "relative", []byte("x"), 0o644, transport.Owner{}); err == nil {
		t.Error("WriteFile with a relative path succeeded")
	}
	if _, err := f.Host.ReadFile(ctx, "relative"); err == nil {
		t.Error("ReadFile with a relative path succeeded")
	}
	if err := f.Host.MkdirAll(ctx, "relative", 0o755, transport.Owner{}); err == nil {
		t.Error("MkdirAll with a relative path succeeded")
	}
}

func testCanceled(t *testing.T, f Fixture) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := f.Dir + "/file"
	if err := transport.WriteFile(ctx, f.Host, p, []byte("x"), 0o644, transport.Owner{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFile with a canceled context = %v; want context.Canceled", err)
	}
	if _, err := f.Host.Stat(t.Context(), p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a canceled WriteFile wrote: Stat = %v", err)
	}
	if _, err := f.Host.ReadFile(ctx, p); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadFile with a canceled context = %v; want context.Canceled", err)
	}
}

// testConcurrent has writers replace one file while readers read it:
// a reader must always see one whole version. Each writer also writes
// and reads back a file of its own.
func testConcurrent(t *testing.T, f Fixture) {
	ctx := t.Context()
	const workers, rounds, size = 4, 10, 100 << 10
	shared := f.Dir + "/shared"
	write(t, f, shared, strings.Repeat("-", size), 0o644)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			own := fmt.Sprintf("%s/own%d", f.Dir, w)
			version := bytes.Repeat([]byte{byte('a' + w)}, size)
			for r := range rounds {
				if err := transport.WriteFile(ctx, f.Host, shared, version, 0o644, transport.Owner{}); err != nil {
					t.Error(err)
					return
				}
				want := fmt.Sprintf("worker %d round %d", w, r)
				if err := transport.WriteFile(ctx, f.Host, own, []byte(want), 0o644, transport.Owner{}); err != nil {
					t.Error(err)
					return
				}
				if got, err := f.Host.ReadFile(ctx, own); err != nil || string(got) != want {
					t.Errorf("ReadFile(%s) = %q, %v; want %q", own, got, err, want)
					return
				}
			}
		})
		wg.Go(func() {
			for range rounds {
				got, err := f.Host.ReadFile(ctx, shared)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) != size || len(bytes.Trim(got, string(got[:1]))) != 0 {
					t.Errorf("read a mix of versions, or a partial one (%d bytes)", len(got))
					return
				}
			}
		})
	}
	wg.Wait()
}

func testRun(t *testing.T, f Fixture) {
	ctx := t.Context()
	var stdout, stderr bytes.Buffer
	err := f.Host.Run(ctx, "echo hello", nil, &stdout, &stderr)
	if errors.Is(err, transport.ErrNoExec) {
		if err := f.Host.Run(ctx, "exit 3", nil, nil, nil); !errors.Is(err, transport.ErrNoExec) {
			t.Errorf("second Run = %v; want ErrNoExec as the first", err)
		}
		return
	}
	ok(t, err)
	if stdout.String() != "hello\n" || stderr.String() != "" {
		t.Errorf("echo hello: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	stdout.Reset()
	ok(t, f.Host.Run(ctx, "echo oops >&2", nil, &stdout, &stderr))
	if stdout.String() != "" || stderr.String() != "oops\n" {
		t.Errorf("echo oops >&2: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	err = f.Host.Run(ctx, "exit 3", nil, nil, nil)
	var ee *transport.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("exit 3: err = %#v; want *ExitError{Code: 3}", err)
	}

	stdout.Reset()
	ok(t, f.Host.Run(ctx, "cat", strings.NewReader("line 1\nline 2\n"), &stdout, nil))
	if stdout.String() != "line 1\nline 2\n" {
		t.Errorf("cat: stdout %q; want stdin back", stdout.String())
	}

	ok(t, f.Host.Run(ctx, "echo discarded; echo discarded >&2", nil, nil, nil))

	// More commands at once than OpenSSH allows sessions on a connection.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			var out bytes.Buffer
			if err := f.Host.Run(ctx, fmt.Sprintf("echo %d", i), nil, &out, nil); err != nil {
				t.Error(err)
				return
			}
			if want := fmt.Sprintf("%d\n", i); out.String() != want {
				t.Errorf("echo %d: stdout %q; want %q", i, out.String(), want)
			}
		})
	}
	wg.Wait()
}
