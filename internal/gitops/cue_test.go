package gitops_test

import (
	"path/filepath"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
)

// TestCUELoad loads a CUE package from FS the way the layout loader does:
// FS is rooted at the layout directory, so Dir is "/" and the package is
// ".". FromFSPath only makes positions name the files in the worktree.
func TestCUELoad(t *testing.T) {
	dir, g := initRepo(t)
	write(t, dir, map[string]string{
		"layout/a.cue": "package layout\nx: 1\n",
		"layout/b.cue": "package layout\ny: x + 1\n",
	})
	c1 := commit(t, g, "one")
	write(t, dir, map[string]string{"layout/a.cue": "package layout\nx: 41\n"})
	commit(t, g, "two")

	layout := filepath.Join(dir, "layout")
	r := open(t, layout)
	fsys, err := r.FS(c1.String())
	if err != nil {
		t.Fatal(err)
	}
	// Dir "." fails: "cannot determine import path for "." (dir outside
	// of root)"; a worktree path finds no package.
	for _, dir := range []string{"/", ""} {
		t.Run("Dir="+dir, func(t *testing.T) {
			insts := load.Instances([]string{"."}, &load.Config{
				FS:  fsys,
				Dir: dir,
				// p is "/a.cue"; positions then name the worktree file.
				FromFSPath: func(p string) string { return filepath.Join(layout, filepath.FromSlash(p)) },
			})
			if len(insts) != 1 {
				t.Fatalf("%d instances, want 1", len(insts))
			}
			if err := insts[0].Err; err != nil {
				t.Fatal(err)
			}
			v := cuecontext.New().BuildInstance(insts[0])
			if err := v.Err(); err != nil {
				t.Fatal(err)
			}
			y, err := v.LookupPath(cue.ParsePath("y")).Int64()
			if err != nil {
				t.Fatal(err)
			}
			if y != 2 {
				t.Errorf("y = %d, want 2 (from the first commit)", y)
			}
			pos := v.LookupPath(cue.ParsePath("x")).Pos().Filename()
			if want := filepath.Join(layout, "a.cue"); pos != want {
				t.Errorf("x is at %q, want %q", pos, want)
			}
		})
	}
}
