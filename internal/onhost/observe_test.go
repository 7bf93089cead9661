package onhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
)

// shellHost is the machine's own filesystem as a host that runs
// commands with sh, counting the files read over the transport. Its
// commands find cyrplan's state directory at state.
type shellHost struct {
	transport.Host
	state string
	onRun func(cmd string) // if set, told each command
	mu    sync.Mutex
	reads []string
}

func newShellHost(t *testing.T) *shellHost {
	h := &shellHost{Host: local.New("/", ""), state: filepath.Join(t.TempDir(), "state")}
	t.Cleanup(func() { h.Close() })
	return h
}

func (h *shellHost) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if h.onRun != nil {
		h.onRun(cmd)
	}
	c := exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(cmd, hostpath.StateDir, h.state))
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return &transport.ExitError{Code: ee.ExitCode()}
	}
	return err
}

// Inspect records the files it read.
func (h *shellHost) Inspect(ctx context.Context, paths []string) ([]transport.Entry, error) {
	entries, err := h.Host.Inspect(ctx, paths)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, e := range entries {
		if e.Data != nil {
			h.reads = append(h.reads, paths[i])
		}
	}
	return entries, err
}

func rendered(path, content string, secrets ...string) render.File {
	return render.File{Path: path, Mode: 0o644, Content: []byte(content), Slot: "slot-observe-test", Secrets: secrets, SHA256: state.Hash([]byte(content))}
}

// One command observes what a plan needs; only files that differ from
// their rendering or hold secrets are read; and the result is exactly
// what observing over the transport alone gives.
func TestObserveOneCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	same := write("same.conf", "a: 1\n", 0o640)
	changed := write("changed.conf", "b: 2\n", 0o644)
	secretFile := write("secret.conf", "sync_password: hunter2\n", 0o600)
	write("target", "c: 3\n", 0o644)
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "d1"), 0o750); err != nil {
		t.Fatal(err)
	}
	notDir := write("d3", "", 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "pfx", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("pfx/bin/master", "#!/bin/sh\n", 0o755)

	want := &render.Host{Name: "h", Files: []render.File{
		rendered(same, "a: 1\n"),
		rendered(changed, "b: 3\n"),
		rendered(secretFile, "sync_password: <<secret:replication>>\n", "replication"),
		rendered(filepath.Join(dir, "missing.conf"), "d: 4\n"),
		rendered(link, "c: 3\n"),
		rendered(fifo, "e: 5\n"),
	}, Dirs: []render.Dir{{Path: filepath.Join(dir, "d1")}, {Path: filepath.Join(dir, "d2")}, {Path: notDir}}}
	prefixes := []string{filepath.Join(dir, "pfx"), filepath.Join(dir, "nopfx")}

	ctx := context.Background()
	sh := newShellHost(t)
	fast, err := Observe(ctx, sh, want, prefixes, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := local.New("/", "")
	defer plain.Close()
	slow, err := Observe(ctx, plain, want, prefixes, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The transport alone cannot check builds; the command can.
	if slow.Exec || !fast.Exec {
		t.Errorf("Exec: over the transport %v, by the command %v", slow.Exec, fast.Exec)
	}
	if fast.Builds[prefixes[0]] != state.BuildPresent || fast.Builds[prefixes[1]] != state.BuildMissing {
		t.Errorf("builds: %v", fast.Builds)
	}
	slow.Exec, slow.Builds = fast.Exec, fast.Builds
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("observed by one command:\n%+v\nover the transport:\n%+v", fast, slow)
		for p, f := range fast.Files {
			if !reflect.DeepEqual(f, slow.Files[p]) {
				t.Errorf("%s: %+v vs %+v", p, f, slow.Files[p])
			}
		}
	}
	var inDir []string
	for _, r := range sh.reads {
		if strings.HasPrefix(r, dir) {
			inDir = append(inDir, r)
		}
	}
	if strings.Join(inDir, " ") != changed+" "+secretFile && strings.Join(inDir, " ") != secretFile+" "+changed {
		t.Errorf("files read over the transport: %v; want only %s and %s", inDir, changed, secretFile)
	}
	// With the secrets the plan renders with, a file holding them that
	// is its filled rendering need not be read either.
	sh.reads = nil
	withSecrets, err := Observe(ctx, sh, want, prefixes, secret.Values{"replication": "hunter2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(withSecrets, fast) {
		t.Errorf("observed with the secrets:\n%+v\nwithout:\n%+v", withSecrets, fast)
	}
	inDir = nil
	for _, r := range sh.reads {
		if strings.HasPrefix(r, dir) {
			inDir = append(inDir, r)
		}
	}
	if len(inDir) != 1 || inDir[0] != changed {
		t.Errorf("files read with the secrets known: %v; want only %s", inDir, changed)
	}
	// Another value (the secret was rotated since): read, and redacted.
	sh.reads = nil
	rotated, err := Observe(ctx, sh, want, prefixes, secret.Values{"replication": "new-pw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sh.reads, secretFile) {
		t.Errorf("a file holding an old secret was not read: %v", sh.reads)
	}
	if f := rotated.Files[secretFile]; !slices.Equal(f.Stale, []string{"replication"}) || f.SHA256 != fast.Files[secretFile].SHA256 {
		t.Errorf("a file holding an old secret: %+v; want it stale, and otherwise as observed", f)
	}
	if f := withSecrets.Files[secretFile]; f.Stale != nil {
		t.Errorf("a file holding the secret as it is: stale %v", f.Stale)
	}
	if f := fast.Files[secretFile]; strings.Contains(string(f.Content), "hunter2") {
		t.Errorf("the secret in the observed state: %q", f.Content)
	}
	if f := fast.Files[same]; !f.Exists || f.Mode != 0o640 || !bytes.Equal(f.Content, []byte("a: 1\n")) {
		t.Errorf("the unchanged file: %+v", f)
	}
	if fast.Files[link].Problem == "" || fast.Files[fifo].Problem == "" || fast.Dirs[notDir].Problem == "" {
		t.Errorf("a link, a FIFO, a file for a directory: %+v %+v %+v", fast.Files[link], fast.Files[fifo], fast.Dirs[notDir])
	}
}

// Anything but the command's complete answer falls back to observing
// over the transport.
func TestParseObservedIncomplete(t *testing.T) {
	paths, prefixes := []string{"/a", "/b"}, []string{"/usr"}
	sum, other := strings.Repeat("0", 64), strings.Repeat("1", 64)
	full := observeHeader + "\nhashes\n" + sum + "  /a\nstat\no 81a4 5 /a\nb 1 /usr\nm none\nkeyed none\nend\n"
	ob, err := parseObserved(full, paths, prefixes, true)
	if err != nil {
		t.Fatalf("a complete answer: %v", err)
	}
	if a, b := ob.paths["/a"], ob.paths["/b"]; !a.exists || a.sha256 != sum || a.size != 5 || b.exists {
		t.Errorf("parsed: /a %+v, /b %+v", a, b)
	}
	// A path hashed as a regular file that the stat after finds a link
	// (swapped meanwhile) has no hash.
	ob, err = parseObserved(strings.Replace(full, "o 81a4", "o a1ff", 1), paths, prefixes, true)
	if err != nil || ob.paths["/a"].sha256 != "" || !ob.paths["/a"].exists || ob.paths["/a"].mode()&fs.ModeSymlink == 0 {
		t.Errorf("a file swapped for a link while hashed: %+v, %v", ob.paths["/a"], err)
	}
	// The manifest comes along, base64; anything but a regular file is
	// read over the transport, which says what is wrong.
	ob, err = parseObserved(strings.Replace(full, "m none", "m "+base64.StdEncoding.EncodeToString([]byte(`{"format":1}`)), 1), paths, prefixes, true)
	if err != nil || ob.manifest != manifestRead || string(ob.manifestData) != `{"format":1}` {
		t.Errorf("a manifest: %+v, %v", ob, err)
	}
	// With a key, the value's keyed hash comes last of the hashes.
	withKey := strings.NewReplacer("keyed none\n", "keyed\nk /a "+sum+"  -\n", "stat\n", other+"  -\nstat\n").Replace(full)
	if ob, err = parseObserved(withKey, paths, prefixes, true); err != nil ||
		ob.keyed == nil || ob.keyed.files["/a"] != sum || !slices.Equal(ob.keyed.values, []string{other}) || ob.paths["/a"].sha256 != sum {
		t.Errorf("keyed hashes: %+v, %v", ob, err)
	}
	if ob, err = parseObserved(strings.Replace(full, "keyed none\n", "keyed\n", 1), paths, prefixes, false); err != nil || ob.keyed == nil || ob.keyed.values != nil {
		t.Errorf("a key and no value asked: %+v, %v", ob, err)
	}
	if ob, err = parseObserved(strings.Replace(full, "m none", "m other", 1), paths, prefixes, true); err != nil || ob.manifest != manifestUnread {
		t.Errorf("a manifest that is not a regular file: %+v, %v", ob, err)
	}
	for _, out := range []string{
		"",
		"cyrplan-observe notools\n",
		strings.Replace(full, "m none\n", "", 1),
		strings.Replace(full, "m none", "m !!!", 1),
		strings.TrimSuffix(full, "end\n"),
		strings.Replace(full, "b 1 /usr\n", "", 1),
		strings.Replace(full, sum, "abc", 1),
		strings.Replace(full, "o 81a4", "o zz", 1),
		strings.Replace(full, "o 81a4 5 /a", "o 81a4 /a", 1),
		strings.Replace(full, "stat\n", "", 1),
		strings.Replace(full, "end\n", "surprise\nend\n", 1),
		strings.Replace(full, "hashes\n", "", 1),
		strings.Replace(full, "keyed none\n", "", 1),
		strings.Replace(full, "keyed none\n", "keyed\n", 1),                       // no value
		strings.Replace(withKey, "stat\n", other+"  -\nstat\n", 1),                // two
		strings.Replace(withKey, "k /a "+sum, "k /a abc", 1),                      // not a hash
		strings.Replace(withKey, other+"  -", "abc  -", 1),                        // not a hash
		strings.Replace(full, "keyed none\n", "keyed none\nk /a "+sum+"  -\n", 1), // no key, yet a hash
		strings.Replace(full, "stat\n", other+"  -\nstat\n", 1),                   // no key, yet a value's
	} {
		if _, err := parseObserved(out, paths, prefixes, true); err != errNoObserve {
			t.Errorf("parseObserved(%q): %v, want errNoObserve", out, err)
		}
	}
}

func TestStatLineMode(t *testing.T) {
	for raw, kind := range map[uint32]string{
		0o100644: "a regular file", 0o040755: "a directory", 0o120777: "a symbolic link",
		0o010644: "a named pipe", 0o140755: "a socket", 0o060660: "a device", 0o020666: "a device",
	} {
		if got := transport.Kind(statLine{raw: raw}.mode()); got != kind {
			t.Errorf("%o: %s, want %s", raw, got, kind)
		}
	}
}

// Only the secrets of the lines the host holds with another value are
// stale.
func TestStale(t *testing.T) {
	rendered := []byte("a: <<secret:one>>\nb: 2\nc: <<secret:two>> <<secret:three>>\n")
	values := secret.Values{"one": "1", "two": "2", "three": "3"}
	for host, want := range map[string][]string{
		"a: 1\nb: 2\nc: 2 3\n": nil,
		"a: 0\nb: 2\nc: 2 3\n": {"one"},
		"a: 1\nb: 2\nc: 2 4\n": {"three", "two"},
		"a: 1\nb: 2\n":         {"three", "two"},
	} {
		if got := stale(rendered, []byte(host), values); !slices.Equal(got, want) {
			t.Errorf("stale(%q) = %v, want %v", host, got, want)
		}
	}
	if got := stale(rendered, []byte("a: 1\nb: 2\nc: 2 3\n"), secret.Values{"one": "1"}); !slices.Equal(got, []string{"three", "two"}) {
		t.Errorf("with values missing: %v", got)
	}
}

// hungHost runs no command to its end: each waits until its context
// ends, as one hashing a file swapped for a FIFO would.
type hungHost struct{ *shellHost }

func (h hungHost) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	<-ctx.Done()
	return ctx.Err()
}

// A host whose observe or keyed hash command does not finish fails
// within readTimeout, saying so (and not with the whole script).
func TestHashingBounded(t *testing.T) {
	defer func(d time.Duration) { readTimeout = d }(readTimeout)
	readTimeout = 50 * time.Millisecond
	h := hungHost{newShellHost(t)}
	want := &render.Host{Name: "h", Files: []render.File{rendered(filepath.Join(t.TempDir(), "a.conf"), "a: 1\n")}}
	ctx := context.Background()
	_, err := Observe(ctx, h, want, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "the observe command did not finish within 50ms") || strings.Contains(err.Error(), "stat --printf") {
		t.Errorf("observe on a hung host: %v", err)
	}
	_, _, err = Fingerprint(ctx, h, []string{want.Files[0].Path}, nil)
	if err == nil || !strings.Contains(err.Error(), "the keyed hash command did not finish within 50ms") {
		t.Errorf("fingerprint on a hung host: %v", err)
	}
	// Ended by the caller, it is the caller's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Observe(cctx, h, want, nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("observe, cancelled: %v", err)
	}
}
