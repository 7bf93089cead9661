package treedir_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/treedir"
)

// example renders the repository's example layout.
func example(t *testing.T) *render.Tree {
	t.Helper()
	l, err := layout.Load("../../layout")
	if err != nil {
		t.Fatalf("example layout: %v", err)
	}
	return render.Render(l)
}

// without returns a copy of tree without the files whose path contains sub.
func without(tree *render.Tree, sub string) *render.Tree {
	out := *tree
	out.Hosts = map[string]*render.Host{}
	for name, h := range tree.Hosts {
		c := *h
		c.Files = slices.DeleteFunc(slices.Clone(h.Files), func(f render.File) bool { return strings.Contains(f.Path, sub) })
		out.Hosts[name] = &c
	}
	return &out
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantContent(t *testing.T, p, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil || string(got) != want {
		t.Errorf("%s = %q, %v; want %q untouched", p, got, err, want)
	}
}

// A directory that holds files cyrplan did not render (the layout
// repository itself, say) is refused, and nothing in it changes.
func TestWriteRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "stores.cue"), "package layout\n")
	writeFile(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/main\n")
	err := treedir.Write(dir, example(t))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "empty directory") {
		t.Fatalf("Write into a directory of other files = %v; want a refusal naming %s and asking for an empty directory", err, dir)
	}
	wantContent(t, filepath.Join(dir, "stores.cue"), "package layout\n")
	wantContent(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/main\n")
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("Write left %d entries in %s; want the 2 that were there", len(entries), dir)
	}
}

// A missing directory is created; an existing empty one is used.
func TestWriteNewAndEmptyDir(t *testing.T) {
	tree := example(t)
	for _, dir := range []string{filepath.Join(t.TempDir(), "a", "tree"), t.TempDir()} {
		if err := treedir.Write(dir, tree); err != nil {
			t.Fatal(err)
		}
		if d, err := treedir.Diff(dir, tree); err != nil || d != "" {
			t.Errorf("Diff after Write = %v\n%s", err, d)
		}
		marker, err := os.ReadFile(filepath.Join(dir, treedir.Marker))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(marker), "\n"), "\n")
		if !strings.HasPrefix(lines[0], "# ") || !slices.Contains(lines, "imap6/etc/cyrus/slot608/imapd.conf") || !slices.IsSorted(lines[1:]) {
			t.Errorf("marker: a header, then every file written, sorted; got:\n%s", marker)
		}
	}
}

// Rendering again into a rendered directory removes the files it wrote
// before and no longer renders, and the directories they leave empty,
// never a file it did not write.
func TestWriteRemovesOnlyItsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	tree := example(t)
	if err := treedir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "imap6", "etc", "cyrus", "slot608", "notes.txt")
	writeFile(t, mine, "my notes\n")
	top := filepath.Join(dir, "README")
	writeFile(t, top, "review copy\n")

	smaller := without(tree, "/slot308/")
	if err := treedir.Write(dir, smaller); err != nil {
		t.Fatal(err)
	}
	wantContent(t, mine, "my notes\n")
	wantContent(t, top, "review copy\n")
	if _, err := os.Stat(filepath.Join(dir, "imap3", "etc", "cyrus", "slot308")); !os.IsNotExist(err) {
		t.Errorf("slot308's directory stays after its files went: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "imap3", "etc", "cyrus")); err != nil {
		t.Errorf("imap3's other slots' directory: %v", err)
	}
	d, err := treedir.Diff(dir, smaller)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--- a/imap6/etc/cyrus/slot608/notes.txt", "--- a/README"} {
		if !strings.Contains(d, want) {
			t.Errorf("Diff does not show the file cyrplan did not write (%s):\n%s", want, d)
		}
	}
	if strings.Contains(d, "slot308") {
		t.Errorf("Diff shows slot308, which Write removed:\n%s", d)
	}
	foreign, err := treedir.Foreign(dir)
	if err != nil || !slices.Equal(foreign, []string{"README", "imap6/etc/cyrus/slot608/notes.txt"}) {
		t.Errorf("Foreign = %q, %v", foreign, err)
	}

	// And back: slot308's files come again.
	if err := treedir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "imap3", "etc", "cyrus", "slot308", "imapd.conf")); err != nil {
		t.Error(err)
	}
}

// A file cyrplan did not write is never overwritten either, even where
// the tree now has a file.
func TestWriteRefusesToOverwriteForeignFile(t *testing.T) {
	dir := t.TempDir()
	tree := example(t)
	if err := treedir.Write(dir, without(tree, "/slot308/")); err != nil {
		t.Fatal(err)
	}
	hand := filepath.Join(dir, "imap3", "etc", "cyrus", "slot308", "imapd.conf")
	writeFile(t, hand, "hand-edited\n")
	err := treedir.Write(dir, tree)
	if err == nil || !strings.Contains(err.Error(), hand) {
		t.Fatalf("Write over a file cyrplan did not write = %v; want a refusal naming %s", err, hand)
	}
	wantContent(t, hand, "hand-edited\n")
}

// The marker is checked: a path in it that leaves the directory is an
// error, and nothing outside is touched.
func TestWriteBadMarker(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "tree")
	outside := filepath.Join(root, "precious")
	writeFile(t, outside, "keep\n")
	if err := treedir.Write(dir, example(t)); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, treedir.Marker)
	data, _ := os.ReadFile(marker)
	writeFile(t, marker, string(data)+"../precious\n")
	err := treedir.Write(dir, example(t))
	if err == nil || !strings.Contains(err.Error(), marker) {
		t.Errorf("Write with a marker listing ../precious = %v; want an error naming %s", err, marker)
	}
	wantContent(t, outside, "keep\n")

	writeFile(t, marker, "imap6/etc/x\n")
	if err := treedir.Write(dir, example(t)); err == nil || !strings.Contains(err.Error(), marker) {
		t.Errorf("Write with a marker without its header = %v; want an error naming %s", err, marker)
	}
}

func TestWriteNotADirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	writeFile(t, p, "x\n")
	if err := treedir.Write(p, example(t)); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Write into a file = %v", err)
	}
	wantContent(t, p, "x\n")
}

// Comparing with a directory that does not exist is an error, not a
// diff of every file.
func TestDiffMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nonexistent")
	d, err := treedir.Diff(dir, example(t))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Diff of a missing directory = %v (and %d bytes of diff); want an error saying %s does not exist", err, len(d), dir)
	}
}

// Rendering again into the same directory rewrites only the files that
// differ: in content (even of the same length), in length, or in mode.
func TestWriteAgainRewritesOnlyWhatDiffers(t *testing.T) {
	tree := example(t)
	dir := t.TempDir()
	if err := treedir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	h := tree.Hosts[tree.HostNames()[0]]
	path := func(i int) string { return filepath.Join(dir, h.Name, h.Files[i].Path) }
	old := time.Unix(1e9, 0)
	for i := range h.Files {
		if err := os.Chtimes(path(i), old, old); err != nil {
			t.Fatal(err)
		}
	}
	same := bytes.Clone(h.Files[0].Content)
	same[len(same)-2] ^= 1 // the same length, another byte
	if err := os.WriteFile(path(0), same, h.Files[0].Mode); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path(1), append(bytes.Clone(h.Files[1].Content), '\n'), h.Files[1].Mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path(2), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 2} {
		if err := os.Chtimes(path(i), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := treedir.Write(dir, tree); err != nil {
		t.Fatal(err)
	}
	for i, f := range h.Files {
		fi, err := os.Stat(path(i))
		if err != nil {
			t.Fatal(err)
		}
		wantContent(t, path(i), string(f.Content))
		if rewritten := !fi.ModTime().Equal(old); rewritten != (i <= 2) || fi.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: rewritten %v, mode %v", f.Path, rewritten, fi.Mode())
		}
	}
}
