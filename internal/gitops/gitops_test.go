package gitops_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/cyrplan/cyrplan/internal/gitops"
)

var sig = &object.Signature{
	Name:  "Test",
	Email: "test@example.com",
	When:  time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
}

// initRepo creates an empty repository whose default branch is main.
func initRepo(t testing.TB) (string, *git.Repository) {
	t.Helper()
	dir := t.TempDir()
	g, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.Main},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, g
}

// write creates the files (slash path → content) below dir.
func write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// commit stages every change in the worktree and commits it.
func commit(t testing.TB, g *git.Repository, msg string) plumbing.Hash {
	t.Helper()
	wt, err := g.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{All: true, Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func open(t testing.TB, dir string) *gitops.Repo {
	t.Helper()
	r, err := gitops.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantErr(t *testing.T, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substrs)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestOpen(t *testing.T) {
	dir, g := initRepo(t)
	write(t, dir, map[string]string{"layout/hosts/a.cue": "package layout\n"})
	commit(t, g, "one")
	for _, tc := range []struct {
		name, dir, sub string
	}{
		{"root", ".", "."},
		{"subdir", "layout", "layout"},
		{"nested", "layout/hosts", "layout/hosts"},
		{"unclean", "layout/../layout/./hosts/", "layout/hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := open(t, filepath.Join(dir, filepath.FromSlash(tc.dir)))
			if r.Root() != dir {
				t.Errorf("Root = %q, want %q", r.Root(), dir)
			}
			if r.Subdir() != tc.sub {
				t.Errorf("Subdir = %q, want %q", r.Subdir(), tc.sub)
			}
		})
	}
	t.Run("outside", func(t *testing.T) {
		_, err := gitops.Open(t.TempDir())
		if !errors.Is(err, gitops.ErrNotRepository) {
			t.Fatalf("err = %v, want ErrNotRepository", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := gitops.Open(filepath.Join(dir, "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("file", func(t *testing.T) {
		_, err := gitops.Open(filepath.Join(dir, "layout/hosts/a.cue"))
		wantErr(t, err, "not a directory")
	})
}

func TestHead(t *testing.T) {
	dir, g := initRepo(t)
	r := open(t, dir)
	_, err := r.Head()
	wantErr(t, err, dir, "no commits yet")

	write(t, dir, map[string]string{"a": "a\n"})
	want := commit(t, g, "one")
	got, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	if got != want.String() {
		t.Errorf("Head = %s, want %s", got, want)
	}
}

func TestResolve(t *testing.T) {
	dir, g := initRepo(t)
	write(t, dir, map[string]string{"a": "1\n"})
	c1 := commit(t, g, "one")
	write(t, dir, map[string]string{"a": "2\n"})
	c2 := commit(t, g, "two")
	for _, ref := range []*plumbing.Reference{
		plumbing.NewHashReference(plumbing.NewBranchReferenceName("feature"), c1),
		plumbing.NewHashReference(plumbing.NewTagReferenceName("v1"), c1),
		plumbing.NewHashReference(plumbing.NewRemoteReferenceName("origin", "main"), c1),
	} {
		if err := g.Storer.SetReference(ref); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.CreateTag("v2", c2, &git.CreateTagOptions{Tagger: sig, Message: "v2"}); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	for _, tc := range []struct {
		name, rev string
		want      plumbing.Hash
	}{
		{"head", "HEAD", c2},
		{"branch", "main", c2},
		{"other branch", "feature", c1},
		{"full branch ref", "refs/heads/feature", c1},
		{"remote branch", "origin/main", c1},
		{"tag", "v1", c1},
		{"annotated tag", "v2", c2},
		{"tilde", "HEAD~1", c1},
		{"caret", "main^", c1},
		{"short id", c1.String()[:7], c1},
		{"full id", c1.String(), c1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Resolve(tc.rev)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want.String() {
				t.Errorf("Resolve(%q) = %s, want %s", tc.rev, got, tc.want)
			}
		})
	}
	for _, rev := range []string{"nope", "HEAD~2", "main^2", "deadbeef", "0123456789012345678901234567890123456789", "", "main@{1}"} {
		t.Run("unknown "+rev, func(t *testing.T) {
			_, err := r.Resolve(rev)
			wantErr(t, err, fmt.Sprintf("%q", rev))
		})
	}
}

func TestDirty(t *testing.T) {
	base := map[string]string{
		".gitignore":          "*.log\n",
		"layout/.gitignore":   "*.tmp\nbuild/\n",
		"layout/a.cue":        "package layout\na: 1\n",
		"layout/sub/b.cue":    "package layout\nb: 2\n",
		"layout/exec.sh":      "#!/bin/sh\n",
		"other/x.txt":         "x\n",
		"layout/keep.tmp":     "tracked although ignored\n", // added with force below
		"layout/sub/deep/c.x": "c\n",
	}
	for _, tc := range []struct {
		name   string
		dir    string // the layout directory; "layout" if empty
		change func(t *testing.T, dir string, wt *git.Worktree)
		want   []string
	}{
		{name: "clean"},
		{name: "modified", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/a.cue": "package layout\na: 10\n"})
		}, want: []string{"a.cue"}},
		{name: "modified same size", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/sub/b.cue": "package layout\nb: 3\n"})
		}, want: []string{"sub/b.cue"}},
		{name: "touched", change: func(t *testing.T, dir string, _ *git.Worktree) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "layout/a.cue"), later, later); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rewritten unchanged", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/a.cue": base["layout/a.cue"]})
		}},
		{name: "made executable", change: func(t *testing.T, dir string, _ *git.Worktree) {
			if err := os.Chmod(filepath.Join(dir, "layout/a.cue"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"a.cue"}},
		{name: "untracked", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/new.cue": "", "layout/new/dir/c.cue": ""})
		}, want: []string{"new.cue", "new/dir/c.cue"}},
		{name: "deleted", change: func(t *testing.T, dir string, _ *git.Worktree) {
			if err := os.RemoveAll(filepath.Join(dir, "layout/sub")); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"sub/b.cue", "sub/deep/c.x"}},
		{name: "replaced by directory", change: func(t *testing.T, dir string, _ *git.Worktree) {
			os.Remove(filepath.Join(dir, "layout/a.cue"))
			write(t, dir, map[string]string{"layout/a.cue/x": ""})
		}, want: []string{"a.cue", "a.cue/x"}},
		{name: "ignored", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{
				"layout/x.tmp":          "",
				"layout/sub/y.tmp":      "",
				"layout/build/out.cue":  "",
				"layout/sub/debug.log":  "", // by the root's .gitignore
				"layout/sub/deep/z.bak": "", // by .git/info/exclude
			})
			write(t, dir, map[string]string{".git/info/exclude": "# local\n*.bak\n"})
		}},
		{name: "tracked file matching ignore", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/keep.tmp": "changed\n"})
		}, want: []string{"keep.tmp"}},
		{name: "ignore file of its own", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/sub/.gitignore": "*.new\n", "layout/sub/x.new": ""})
		}, want: []string{"sub/.gitignore"}},
		{name: "outside", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"other/x.txt": "changed\n", "other/new": "", "top": ""})
			os.Remove(filepath.Join(dir, ".gitignore"))
		}},
		{name: "staged then reverted", change: func(t *testing.T, dir string, wt *git.Worktree) {
			write(t, dir, map[string]string{"layout/a.cue": "staged\n"})
			if _, err := wt.Add("layout/a.cue"); err != nil {
				t.Fatal(err)
			}
			write(t, dir, map[string]string{"layout/a.cue": base["layout/a.cue"]})
		}, want: []string{"a.cue"}},
		{name: "staged deletion", change: func(t *testing.T, dir string, wt *git.Worktree) {
			if _, err := wt.Remove("layout/a.cue"); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"a.cue"}},
		{name: "staged new file", change: func(t *testing.T, dir string, wt *git.Worktree) {
			write(t, dir, map[string]string{"layout/new.cue": ""})
			if _, err := wt.Add("layout/new.cue"); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"new.cue"}},
		{name: "root as layout", dir: ".", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"other/x.txt": "changed\n", "layout/x.tmp": "", "top": ""})
		}, want: []string{"other/x.txt", "top"}},
		{name: "nested layout", dir: "layout/sub", change: func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, dir, map[string]string{"layout/a.cue": "changed\n", "layout/sub/b.cue": "x", "layout/sub/n.tmp": ""})
		}, want: []string{"b.cue"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, g := initRepo(t)
			write(t, dir, base)
			wt, err := g.Worktree()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := wt.Add("layout/keep.tmp"); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "layout/exec.sh"), 0o755); err != nil {
				t.Fatal(err)
			}
			commit(t, g, "base")
			if tc.change != nil {
				tc.change(t, dir, wt)
			}
			layout := tc.dir
			if layout == "" {
				layout = "layout"
			}
			got, err := open(t, filepath.Join(dir, layout)).Dirty()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Dirty = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDirtyNoCommits(t *testing.T) {
	dir, _ := initRepo(t)
	write(t, dir, map[string]string{"layout/a.cue": "", "layout/.gitignore": "*.tmp\n", "layout/b.tmp": ""})
	got, err := open(t, filepath.Join(dir, "layout")).Dirty()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".gitignore", "a.cue"}; !slices.Equal(got, want) {
		t.Errorf("Dirty = %q, want %q", got, want)
	}
}

// symlink creates the links (slash path → target) below dir.
func symlink(t testing.TB, dir string, links map[string]string) {
	t.Helper()
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFS(t *testing.T) {
	dir, g := initRepo(t)
	write(t, dir, map[string]string{"README": "no layout yet\n"})
	c0 := commit(t, g, "zero")
	write(t, dir, map[string]string{
		"layout/a.cue":     "package layout\na: 1\n",
		"layout/x.cue":     "package layout\n",
		"layout/x/y.cue":   "package layout\n", // git orders x.cue before x/
		"layout/x-y/z.cue": "package layout\n",
		"shared/s.cue":     "package layout\ns: 1\n",
	})
	symlink(t, dir, map[string]string{
		"layout/s.cue":    "../shared/s.cue",
		"layout/shared":   "../shared",
		"layout/x/up.cue": "../a.cue",
	})
	c1 := commit(t, g, "one")
	write(t, dir, map[string]string{"layout/a.cue": "package layout\na: 2\n", "layout/new.cue": "package layout\n"})
	c2 := commit(t, g, "two")
	symlink(t, dir, map[string]string{
		"layout/escape.cue": "../../outside.cue",
		"layout/loop.cue":   "loop.cue",
	})
	c3 := commit(t, g, "three")
	// An uncommitted change must not show.
	write(t, dir, map[string]string{"layout/a.cue": "uncommitted\n", "layout/untracked.cue": ""})

	r := open(t, filepath.Join(dir, "layout"))
	fs1, err := r.FS(c1.String())
	if err != nil {
		t.Fatal(err)
	}
	fs2, err := r.FS(c2.String())
	if err != nil {
		t.Fatal(err)
	}
	fs3, err := r.FS(c3.String())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("versions", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			fsys fs.FS
			file string
			want string
		}{
			{"old", fs1, "a.cue", "package layout\na: 1\n"},
			{"new", fs2, "a.cue", "package layout\na: 2\n"},
			{"file link", fs2, "s.cue", "package layout\ns: 1\n"},
			{"dir link", fs2, "shared/s.cue", "package layout\ns: 1\n"},
			{"link up", fs2, "x/up.cue", "package layout\na: 2\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := fs.ReadFile(tc.fsys, tc.file)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("%s = %q, want %q", tc.file, got, tc.want)
				}
			})
		}
	})

	t.Run("walk", func(t *testing.T) {
		var got []string
		err := fs.WalkDir(fs2, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("%s %v", p, d.Type()))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			". d---------",
			"a.cue ----------",
			"new.cue ----------",
			"s.cue L---------",
			"shared L---------",
			"x d---------",
			"x/up.cue L---------",
			"x/y.cue ----------",
			"x-y d---------",
			"x-y/z.cue ----------",
			"x.cue ----------",
		}
		if !slices.Equal(got, want) {
			t.Errorf("WalkDir:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("stat", func(t *testing.T) {
		fi, err := fs.Stat(fs2, "a.cue")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Name() != "a.cue" || fi.Size() != 20 || fi.Mode() != 0o644 || !fi.ModTime().Equal(sig.When) {
			t.Errorf("Stat = %s %d %v %v", fi.Name(), fi.Size(), fi.Mode(), fi.ModTime())
		}
		fi, err = fs.Stat(fs2, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Name() != "shared" || !fi.IsDir() {
			t.Errorf("Stat(shared) = %s %v, want a directory", fi.Name(), fi.Mode())
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, file string
			want       error
		}{
			{"missing", "nope.cue", fs.ErrNotExist},
			{"parent", "../a.cue", fs.ErrInvalid},
			{"below a file", "a.cue/b", fs.ErrNotExist},
			{"invalid", "/a.cue", fs.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := fs.ReadFile(fs2, tc.file)
				if !errors.Is(err, tc.want) {
					t.Errorf("ReadFile(%q) = %v, want %v", tc.file, err, tc.want)
				}
			})
		}
		if _, err := fs.ReadFile(fs1, "new.cue"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("new.cue at the old commit: %v, want ErrNotExist", err)
		}
		_, err := fs.ReadFile(fs3, "escape.cue")
		wantErr(t, err, "escape.cue", "outside the repository")
		_, err = fs.ReadFile(fs3, "loop.cue")
		wantErr(t, err, "loop.cue", "too many levels of symbolic links")
	})

	t.Run("fstest", func(t *testing.T) {
		if err := fstest.TestFS(fs2, "a.cue", "s.cue", "shared", "x/up.cue", "x-y/z.cue"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				err := fs.WalkDir(fs2, ".", func(p string, d fs.DirEntry, err error) error {
					if err != nil || !d.Type().IsRegular() {
						return err
					}
					_, err = d.Info()
					if err == nil {
						_, err = fs.ReadFile(fs2, p)
					}
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("missing layout", func(t *testing.T) {
		_, err := r.FS(c0.String())
		wantErr(t, err, "layout directory layout does not exist", c0.String())
	})

	t.Run("revision", func(t *testing.T) {
		f, err := r.FS("HEAD~2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(f, "new.cue"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("new.cue at HEAD~2: %v, want ErrNotExist", err)
		}
		_, err = r.FS("nope")
		wantErr(t, err, `unknown revision "nope"`)
	})
}

// BenchmarkDirty checks a clean layout of 2,000 files in a repository of
// 5,000.
func BenchmarkDirty(b *testing.B) {
	dir, g := initRepo(b)
	files := map[string]string{}
	for i := range 2000 {
		files[fmt.Sprintf("layout/d%02d/f%04d.cue", i%40, i)] = fmt.Sprintf("package layout\nf%d: %d\n", i, i)
	}
	for i := range 3000 {
		files[fmt.Sprintf("other/d%02d/f%04d.txt", i%60, i)] = fmt.Sprintf("other %d\n", i)
	}
	write(b, dir, files)
	commit(b, g, "big")
	r := open(b, filepath.Join(dir, "layout"))
	for b.Loop() {
		got, err := r.Dirty()
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 0 {
			b.Fatalf("Dirty = %q", got)
		}
	}
}

func TestLayoutID(t *testing.T) {
	dir, g := initRepo(t)
	write(t, dir, map[string]string{"layout/a.cue": "package layout\n", "README": "one\n"})
	c1 := commit(t, g, "one")
	write(t, dir, map[string]string{"README": "two\n"})
	c2 := commit(t, g, "two: outside the layout")
	write(t, dir, map[string]string{"layout/a.cue": "package layout\na: 1\n"})
	c3 := commit(t, g, "three: the layout")
	r := open(t, filepath.Join(dir, "layout"))
	id := func(c plumbing.Hash) string {
		t.Helper()
		s, err := r.LayoutID(c.String())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if id(c1) != id(c2) {
		t.Error("a commit outside the layout changed its LayoutID")
	}
	if id(c2) == id(c3) {
		t.Error("a commit inside the layout kept its LayoutID")
	}
	_, err := r.LayoutID("nope")
	wantErr(t, err, `unknown revision "nope"`)
}
