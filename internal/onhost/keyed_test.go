package onhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
)

var hexKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// keyedHash is the keyed hash as the package comment defines it, made
// here with the key the test reads from the host.
func keyedHash(key []byte, parts ...string) string {
	h := sha256.New()
	h.Write(key)
	h.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h.Sum(nil))
}

// The host makes its key once, readable by root alone, and the keyed
// hashes of files and values with it; the values never stand in a
// command; without the key there are none; and a file holding secrets
// is known without being read when its keyed hash is the one recorded.
func TestKeyed(t *testing.T) {
	ctx := context.Background()
	sh := newShellHost(t)
	var cmds []string
	sh.onRun = func(cmd string) { cmds = append(cmds, cmd) }
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "imapd.conf")
	content := "sync_password: hunter2\n"
	if err := os.WriteFile(secretFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	want := &render.Host{Name: "h", Files: []render.File{rendered(secretFile, "sync_password: <<secret:replication>>\n", "replication")}}
	creds := []Labeled{{Label: state.CredentialsLabel("repl"), Value: "pa ss\\word$(id)"}}

	// No key yet: no keyed hashes, no fingerprints, and the file is read.
	o, err := Observe(ctx, sh, want, nil, nil, &creds[0])
	if err != nil {
		t.Fatal(err)
	}
	if o.Fingerprints != nil || !slices.Contains(sh.reads, secretFile) {
		t.Errorf("without a key: fingerprints %v, read %v", o.Fingerprints, sh.reads)
	}
	if _, err := os.Stat(filepath.Join(sh.state, "hash.key")); !os.IsNotExist(err) {
		t.Fatalf("observing made the key: %v", err)
	}

	files, values, err := Fingerprint(ctx, sh, []string{secretFile, filepath.Join(dir, "missing")}, creds)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(sh.state, "hash.key")
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.TrimSuffix(data, []byte("\n"))
	if fi, _ := os.Stat(keyFile); !hexKeyRE.Match(key) || fi.Mode().Perm() != 0o600 {
		t.Errorf("key: %q, mode %v; want 64 hex digits, 0600", key, fi.Mode())
	}
	wantFile := keyedHash(key, "file", content)
	wantValue := keyedHash(key, "value", creds[0].Label, creds[0].Value)
	if len(files) != 1 || files[secretFile] != wantFile {
		t.Errorf("keyed hashes of files %v; want %s for %s alone", files, wantFile, secretFile)
	}
	if values[creds[0].Label] != wantValue {
		t.Errorf("fingerprints %v; want %s", values, wantValue)
	}
	if _, again, err := Fingerprint(ctx, sh, nil, creds); err != nil || again[creds[0].Label] != wantValue {
		t.Errorf("a second time (the same key): %v, %v", again, err)
	}
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(data, again) {
		t.Error("the key was made again")
	}

	// With the key, the observe command makes the same hashes.
	sh.reads = nil
	o, err = Observe(ctx, sh, want, nil, nil, &creds[0])
	if err != nil {
		t.Fatal(err)
	}
	if o.Fingerprints[creds[0].Label] != wantValue {
		t.Errorf("observed fingerprints %v; want %s", o.Fingerprints, wantValue)
	}
	ob, err := observeAll(ctx, sh, []string{secretFile}, nil, []string{secretFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	written := &state.Manifest{Files: map[string]state.ManifestFile{secretFile: {SHA256: want.Files[0].SHA256, Keyed: wantFile}}}
	if !ob.asWritten(secretFile, written, &want.Files[0]) {
		t.Errorf("the file apply wrote is not known by its keyed hash: %+v", ob.keyed)
	}
	st, _ := ob.path(secretFile)
	if f := fromObserved(st, &want.Files[0], want.Files[0].Content, nil, true); f == nil || f.SHA256 != want.Files[0].SHA256 || f.Mode != 0o600 {
		t.Errorf("known by its keyed hash: %+v", f)
	}
	rerendered := want.Files[0]
	rerendered.SHA256 = state.Hash([]byte("other"))
	if ob.asWritten(secretFile, written, &rerendered) {
		t.Error("a file written from another rendering is taken as this one's")
	}
	// Edited on the host (the same length, another password): read.
	if err := os.WriteFile(secretFile, []byte("sync_password: hunter3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ob, err = observeAll(ctx, sh, []string{secretFile}, nil, []string{secretFile}, nil); err != nil || ob.asWritten(secretFile, written, &want.Files[0]) {
		t.Errorf("an edited file is taken as written: %v", err)
	}
	for _, c := range cmds {
		if strings.Contains(c, "hunter") || strings.Contains(c, "pa ss") {
			t.Errorf("a secret in a command: %s", c)
		}
	}
	// A key that is not one (here, cut short) is none.
	if err := os.WriteFile(keyFile, key[:63], 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err := Observe(ctx, sh, want, nil, nil, &creds[0]); err != nil || o.Fingerprints != nil {
		t.Errorf("a broken key: fingerprints %v, %v", o.Fingerprints, err)
	}
	if _, _, err := Fingerprint(ctx, sh, nil, []Labeled{{Label: "x", Value: "a\nb"}}); err == nil {
		t.Error("a value with a line break was fingerprinted")
	}
}
