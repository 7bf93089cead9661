// Package treedir writes a rendered tree to a directory, one folder per
// host (DIR/<host>/<path on host>), and compares a directory with a
// rendered tree. It is how `cyrplan render` and the golden files see the
// tree.
//
// Write never deletes or overwrites a file it did not write: it renders
// only into a new or empty directory, or into one it rendered before,
// where its Marker lists the files it wrote.
package treedir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/cyrplan/cyrplan/internal/render"
)

// Marker is the file Write keeps at the top of a directory it renders
// into: a header line, then every file it wrote there (slash-separated,
// relative to the directory), sorted, one per line. A later Write removes
// only files the marker lists; Diff and Foreign ignore it.
const Marker = ".cyrplan-render"

// markerTmp is the marker being replaced (written, then renamed).
const markerTmp = Marker + ".tmp"

const markerHeader = "# cyrplan render --out wrote these files here; it removes none but these"

// Write writes every file of t under dir with its mode (owners are not
// applied: dir is for review, not a host), creating dir if it is missing.
// A dir that is neither empty nor rendered before (it has no Marker) is
// refused. Files Write wrote before and t no longer holds are removed,
// with the directories they leave empty; no other file is touched, and a
// file of t where dir holds a file Write did not write is an error.
func Write(dir string, t *render.Tree) error {
	prev, fresh, err := claim(dir)
	if err != nil {
		return err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	want, paths := treeFiles(t)
	if !fresh {
		if err := checkOverwrites(dir, r, paths, prev); err != nil {
			return err
		}
	}
	// The marker lists every file before it is written, so that an
	// interrupted Write leaves none that the next one does not know.
	if err := writeMarker(r, union(prev, paths)); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, Marker), err)
	}
	var scratch []byte
	for _, p := range paths {
		if err := writeFile(r, p, want[p], &scratch); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, p), err)
		}
	}
	for p := range prev {
		if want[p] == nil {
			if err := removeStale(r, p); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(dir, p), err)
			}
		}
	}
	if err := writeMarker(r, paths); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, Marker), err)
	}
	return nil
}

// claim checks that Write may render into dir, creating it if missing,
// and returns the files its marker lists; fresh means dir is new or empty.
func claim(dir string) (prev map[string]bool, fresh bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, true, os.MkdirAll(dir, 0o755)
	case err != nil:
		return nil, false, err
	case !fi.IsDir():
		return nil, false, fmt.Errorf("%s is not a directory; render into an empty directory or a new one", dir)
	}
	prev, err = readMarker(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return prev, false, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	if len(entries) > 0 {
		return nil, false, fmt.Errorf("%s is not empty and cyrplan has not rendered into it (it has no %s); render into an empty directory or a new one: cyrplan never deletes or overwrites files it did not write", dir, Marker)
	}
	return nil, true, nil
}

// readMarker returns the files dir's marker lists; a missing marker
// gives an error satisfying fs.ErrNotExist.
func readMarker(dir string) (map[string]bool, error) {
	name := filepath.Join(dir, Marker)
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != markerHeader {
		return nil, fmt.Errorf("%s is not a marker of cyrplan render (its first line is not %q); remove it only if %s holds nothing but a rendered tree", name, markerHeader, dir)
	}
	out := map[string]bool{}
	for i, p := range lines[1:] {
		if !fs.ValidPath(p) || p == "." || p == Marker || p == markerTmp {
			return nil, fmt.Errorf("%s:%d: %q is not the path of a file inside %s; fix or remove the line", name, i+2, p, dir)
		}
		out[p] = true
	}
	return out, nil
}

// writeMarker replaces the marker in r with one listing paths.
func writeMarker(r *os.Root, paths []string) error {
	var b strings.Builder
	b.WriteString(markerHeader + "\n")
	for _, p := range paths {
		b.WriteString(p + "\n")
	}
	if err := r.WriteFile(markerTmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return r.Rename(markerTmp, Marker)
}

// treeFiles returns t's files by slash path relative to the directory
// (host/etc/...), and those paths sorted.
func treeFiles(t *render.Tree) (map[string]*render.File, []string) {
	want := map[string]*render.File{}
	var paths []string
	for _, h := range t.HostNames() {
		files := t.Hosts[h].Files
		for i := range files {
			p := h + files[i].Path
			want[p] = &files[i]
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return want, paths
}

// union returns the paths of a and of b (sorted), sorted.
func union(a map[string]bool, b []string) []string {
	out := append([]string(nil), b...)
	for p := range a {
		if _, found := slices.BinarySearch(b, p); !found {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// checkOverwrites refuses to write a file where dir holds one that the
// marker does not list.
func checkOverwrites(dir string, r *os.Root, paths []string, prev map[string]bool) error {
	var taken []string
	for _, p := range paths {
		if prev[p] {
			continue
		}
		if _, err := r.Lstat(filepath.FromSlash(p)); err == nil {
			taken = append(taken, filepath.Join(dir, p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(taken) > 0 {
		return fmt.Errorf("the rendered tree has files where %s holds files cyrplan did not write (%s does not list them); move them away and render again:\n  %s",
			dir, Marker, strings.Join(taken, "\n  "))
	}
	return nil
}

// writeFile writes f at p in r, unless it is there already (read into
// scratch: re-rendering into a directory is cheap, and makes no garbage
// of what it reads).
func writeFile(r *os.Root, p string, f *render.File, scratch *[]byte) error {
	name := filepath.FromSlash(p)
	if same(r, name, f, scratch) {
		return nil
	}
	if err := r.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	if err := r.WriteFile(name, f.Content, f.Mode.Perm()); err != nil {
		return err
	}
	return r.Chmod(name, f.Mode.Perm())
}

// same says whether name in r is a regular file with f's mode and
// content (a FIFO there is never opened).
func same(r *os.Root, name string, f *render.File, scratch *[]byte) bool {
	fi, err := r.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != f.Mode.Perm() || fi.Size() != int64(len(f.Content)) {
		return false
	}
	old, err := r.Open(name)
	if err != nil {
		return false
	}
	defer old.Close()
	if cap(*scratch) < len(f.Content)+1 {
		*scratch = make([]byte, len(f.Content)+1)
	}
	buf := (*scratch)[:len(f.Content)+1] // one byte more: a file that grew meanwhile differs
	n, err := io.ReadFull(old, buf)
	return (err == io.ErrUnexpectedEOF || err == io.EOF) && n == len(f.Content) && bytes.Equal(buf[:n], f.Content)
}

// removeStale removes the file p that Write wrote before, if it is still
// a regular file, and then the directories it leaves empty.
func removeStale(r *os.Root, p string) error {
	fi, err := r.Lstat(filepath.FromSlash(p))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil // gone, or no longer the file Write wrote
	}
	if err != nil {
		return err
	}
	if err := r.Remove(filepath.FromSlash(p)); err != nil {
		return err
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		name := filepath.FromSlash(d)
		if fi, err := r.Lstat(name); err != nil || !fi.IsDir() || r.Remove(name) != nil {
			break // not empty (or not a plain directory): kept
		}
	}
	return nil
}

// Foreign lists the files under dir that Write did not write there (its
// Marker does not list them), relative to dir and slash-separated, sorted.
func Foreign(dir string) ([]string, error) {
	mine, err := readMarker(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !mine[rel] && !own(rel) {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// own reports whether rel is Write's own bookkeeping, not a tree file.
func own(rel string) bool { return rel == Marker || rel == markerTmp }

// Diff compares dir with t and returns a unified diff per differing file
// (a file missing on either side shows as wholly added or removed), in
// path order; empty means dir holds exactly t. The Marker is not
// compared. A missing dir is an error satisfying fs.ErrNotExist.
func Diff(dir string, t *render.Tree) (string, error) {
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", notExist(dir + " does not exist")
	} else if err != nil {
		return "", err
	} else if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	want := map[string][]byte{}
	for _, h := range t.HostNames() {
		for _, f := range t.Hosts[h].Files {
			want[h+f.Path] = f.Content
		}
	}
	have, err := files(dir)
	if err != nil {
		return "", err
	}
	all := map[string]bool{}
	for p := range want {
		all[p] = true
	}
	for _, p := range have {
		all[filepath.ToSlash(p)] = true
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out strings.Builder
	for _, p := range paths {
		old, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		newer, ok := want[p]
		if bytes.Equal(old, newer) && ok && err == nil {
			continue
		}
		oldName, newName := "a/"+p, "b/"+p
		if err != nil {
			oldName = "/dev/null"
		}
		if !ok {
			newName = "/dev/null"
		}
		out.Write(diff.Diff(oldName, old, newName, newer))
	}
	return out.String(), nil
}

// notExist is an error that says what is missing and satisfies
// fs.ErrNotExist.
type notExist string

func (e notExist) Error() string        { return string(e) }
func (e notExist) Is(target error) bool { return target == fs.ErrNotExist }

// files lists the regular files under dir, relative to it, but the
// marker.
func files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			if !own(filepath.ToSlash(rel)) {
				out = append(out, rel)
			}
		} else if !d.IsDir() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		return nil
	})
	return out, err
}
