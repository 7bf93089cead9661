// Package treedir writes a rendered tree to a directory, one folder per
// host (DIR/<host>/<path on host>), and compares a directory with a
// rendered tree. It is how `cyrplan render` and the golden files see the
// tree.
package treedir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/cyrplan/cyrplan/internal/render"
)

// Write writes every file of t under dir with its mode (owners are not
// applied: dir is for review, not a host). Files under dir that t does
// not hold are removed, so dir is exactly the tree.
func Write(dir string, t *render.Tree) error {
	want := map[string]bool{}
	for _, h := range t.HostNames() {
		for _, f := range t.Hosts[h].Files {
			p := filepath.Join(dir, h, filepath.FromSlash(f.Path))
			want[p] = true
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() == f.Mode.Perm() {
				if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Content) {
					continue // already there: re-rendering into a directory is cheap
				}
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, f.Content, f.Mode.Perm()); err != nil {
				return err
			}
			if err := os.Chmod(p, f.Mode.Perm()); err != nil {
				return err
			}
		}
	}
	stale, err := files(dir)
	if err != nil {
		return err
	}
	for _, p := range stale {
		if !want[filepath.Join(dir, p)] {
			if err := os.Remove(filepath.Join(dir, p)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Diff compares dir with t and returns a unified diff per differing file
// (a file missing on either side shows as wholly added or removed), in
// path order; empty means dir holds exactly t.
func Diff(dir string, t *render.Tree) (string, error) {
	want := map[string][]byte{}
	for _, h := range t.HostNames() {
		for _, f := range t.Hosts[h].Files {
			want[h+f.Path] = f.Content
		}
	}
	have, err := files(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
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

// files lists the regular files under dir, relative to it.
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
			out = append(out, rel)
		} else if !d.IsDir() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		return nil
	})
	return out, err
}
