// Package gitops reads the git repository that holds a layout directory:
// which commit is checked out, whether the layout has uncommitted changes,
// and the layout as it was at any commit. It uses go-git and never runs
// the git binary.
package gitops

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrNotRepository is returned by Open for a directory that is not inside
// a git repository.
var ErrNotRepository = errors.New("not inside a git repository")

// Repo is the git repository that holds a layout directory. It is safe for
// concurrent use, and so are the file systems FS returns.
type Repo struct {
	// mu serialises access to the object store, which go-git does not
	// make safe for concurrent use.
	mu   sync.Mutex
	git  *git.Repository
	work billy.Filesystem // the worktree
	root string
	sub  string
}

// Open finds the git repository that contains dir, which may be the
// repository's root or any directory below it, looking upwards like git
// does. It returns ErrNotRepository if there is none.
func Open(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	g, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{
		DetectDotGit:          true,
		EnableDotGitCommonDir: true,
	})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	wt, err := g.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	root := wt.Filesystem.Root()
	sub, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, err
	}
	sub = filepath.ToSlash(sub)
	if sub == ".." || strings.HasPrefix(sub, "../") {
		return nil, fmt.Errorf("%s is outside the worktree %s", dir, root)
	}
	return &Repo{git: g, work: wt.Filesystem, root: root, sub: sub}, nil
}

// Root returns the absolute path of the repository's worktree.
func (r *Repo) Root() string { return r.root }

// Subdir returns the layout directory relative to Root, slash-separated;
// it is "." for the root itself.
func (r *Repo) Subdir() string { return r.sub }

// Head returns the full id of the commit HEAD points at.
func (r *Repo) Head() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.git.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", fmt.Errorf("git repository %s has no commits yet", r.root)
	}
	if err != nil {
		return "", fmt.Errorf("git repository %s: HEAD: %w", r.root, err)
	}
	return ref.Hash().String(), nil
}

// Resolve returns the full id of the commit rev names: a branch, remote
// branch ("origin/main"), tag, "HEAD", a short or full commit id, any of
// them followed by ~n or ^n. Reflog selectors (main@{1}) are refused.
func (r *Repo) Resolve(rev string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (r *Repo) resolve(rev string) (plumbing.Hash, error) {
	if strings.Contains(rev, "@{") {
		// go-git parses these and then ignores them: main@{1} is main.
		return plumbing.ZeroHash, fmt.Errorf("revision %q: reflog selectors (@{...}) are not supported", rev)
	}
	h, err := r.git.ResolveRevision(plumbing.Revision(rev))
	// A missing ref and a walk past the first commit (HEAD~99) both
	// mean the revision does not exist.
	if errors.Is(err, plumbing.ErrReferenceNotFound) || errors.Is(err, io.EOF) {
		return plumbing.ZeroHash, fmt.Errorf("unknown revision %q", rev)
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("revision %q: %w", rev, err)
	}
	return *h, nil
}

// Dirty reports the files under the layout directory that differ from
// HEAD in the index or in the worktree: modified, added, deleted, or
// untracked and not ignored. The paths are sorted and relative to the
// layout directory; there are none if it is clean.
//
// Ignored files are those the .gitignore files, $GIT_DIR/info/exclude or
// the core.excludesfile of ~/.gitconfig or /etc/gitconfig name.
func (r *Repo) Dirty() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	head, err := r.headFiles()
	if err != nil {
		return nil, err
	}
	idx, err := r.git.Storer.Index()
	if err != nil {
		return nil, fmt.Errorf("git index: %w", err)
	}
	prefix := r.sub + "/"
	if r.sub == "." {
		prefix = ""
	}
	dirty := map[string]bool{}
	tracked := map[string]filemode.FileMode{}
	for _, e := range idx.Entries {
		rel, ok := strings.CutPrefix(e.Name, prefix)
		if !ok {
			continue
		}
		tracked[rel] = e.Mode
		h, inHead := head[rel]
		delete(head, rel)
		// A conflict has stages 1 to 3; go-git's index.Merged is 1, not 0.
		if e.Stage != 0 || !inHead || h.Hash != e.Hash || h.Mode != e.Mode {
			dirty[rel] = true
			continue
		}
		if e.Mode == filemode.Submodule || e.SkipWorktree {
			continue
		}
		changed, err := r.changed(e)
		if err != nil {
			return nil, err
		}
		if changed {
			dirty[rel] = true
		}
	}
	for rel := range head { // in HEAD, not in the index
		dirty[rel] = true
	}
	if err := r.untracked(tracked, dirty); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(dirty)), nil
}

// headFiles returns the entries of the files below the layout directory in
// HEAD's tree, by path relative to the layout directory.
func (r *Repo) headFiles() (map[string]object.TreeEntry, error) {
	files := map[string]object.TreeEntry{}
	ref, err := r.git.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return files, nil // no commits yet: every file is new
	}
	if err != nil {
		return nil, fmt.Errorf("HEAD: %w", err)
	}
	c, err := r.git.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("HEAD: %w", err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("HEAD: %w", err)
	}
	if r.sub != "." {
		t, err = t.Tree(r.sub)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("HEAD:%s: %w", r.sub, err)
		}
	}
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("HEAD:%s: %w", r.sub, err)
		}
		if e.Mode != filemode.Dir {
			files[name] = e
		}
	}
}

// changed reports whether the worktree file of index entry e differs from
// it. Like git it compares the type, the executable bit and the content,
// but it hashes every file whose size matches rather than trusting
// modification times.
func (r *Repo) changed(e *index.Entry) (bool, error) {
	name := filepath.Join(r.root, filepath.FromSlash(e.Name))
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	mode, err := filemode.NewFromOSFileMode(fi.Mode())
	if err != nil || mode != e.Mode {
		return true, nil // a directory, device or other type change
	}
	if mode == filemode.Symlink {
		target, err := os.Readlink(name)
		if err != nil {
			return false, err
		}
		return plumbing.ComputeHash(plumbing.BlobObject, []byte(target)) != e.Hash, nil
	}
	if uint32(fi.Size()) != e.Size { // the index keeps the size mod 2³²
		return true, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return false, err
	}
	return plumbing.ComputeHash(plumbing.BlobObject, data) != e.Hash, nil
}

// untracked adds to dirty the files below the layout directory that are
// neither tracked (in the index, by path relative to the layout directory)
// nor ignored.
func (r *Repo) untracked(tracked map[string]filemode.FileMode, dirty map[string]bool) error {
	ps, err := r.ignores()
	if err != nil {
		return err
	}
	base := filepath.Join(r.root, filepath.FromSlash(r.sub))
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.Name() == ".git" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rp := path.Join(r.sub, rel) // from the root
		var parts []string
		if rp != "." {
			parts = strings.Split(rp, "/")
		}
		if rel != "." && gitignore.NewMatcher(ps).Match(parts, d.IsDir()) {
			// Git never looks inside an ignored directory for
			// untracked files; tracked ones were checked already.
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		mode, isTracked := tracked[rel]
		switch {
		case d.IsDir() && mode == filemode.Submodule:
			return fs.SkipDir
		case d.IsDir():
			more, err := readIgnore(r.work, path.Join(rp, ".gitignore"), parts)
			ps = append(ps, more...)
			return err
		case !isTracked:
			dirty[rel] = true
		}
		return nil
	})
}

// ignores returns the ignore patterns that apply to the layout directory
// from outside it: the system and user excludes files,
// $GIT_DIR/info/exclude and the .gitignore files of the directories above
// it, lowest priority first.
func (r *Repo) ignores() ([]gitignore.Pattern, error) {
	sys, err := gitignore.LoadSystemPatterns(osfs.New("/"))
	if err != nil {
		return nil, fmt.Errorf("system excludes: %w", err)
	}
	user, err := gitignore.LoadGlobalPatterns(osfs.New("/"))
	if err != nil {
		return nil, fmt.Errorf("user excludes: %w", err)
	}
	ps := append(sys, user...)
	if s, ok := r.git.Storer.(*filesystem.Storage); ok {
		more, err := readIgnore(s.Filesystem(), "info/exclude", nil)
		if err != nil {
			return nil, err
		}
		ps = append(ps, more...)
	}
	if r.sub == "." {
		return ps, nil
	}
	dirs := strings.Split(r.sub, "/")
	for i := range dirs { // the root's .gitignore, then each but the last
		domain := dirs[:i]
		more, err := readIgnore(r.work, path.Join(path.Join(domain...), ".gitignore"), domain)
		if err != nil {
			return nil, err
		}
		ps = append(ps, more...)
	}
	return ps, nil
}

// readIgnore parses the ignore file name in fsys, whose patterns apply
// below the directory domain. A missing file has no patterns.
func readIgnore(fsys billy.Filesystem, name string, domain []string) ([]gitignore.Pattern, error) {
	data, err := util.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps []gitignore.Pattern
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps, nil
}

// LayoutID returns the id of the git tree of the layout directory at
// commit. Two commits with the same layout files have the same LayoutID:
// a plan reviewed on a pull request's head still applies after a merge
// that changed nothing in the layout.
func (r *Repo) LayoutID(commit string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(commit)
	if err != nil {
		return "", err
	}
	c, err := r.git.CommitObject(h)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", commit, err)
	}
	t, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", commit, err)
	}
	if r.sub != "." {
		if t, err = t.Tree(r.sub); err != nil {
			return "", fmt.Errorf("layout directory %s does not exist at commit %s", r.sub, h)
		}
	}
	return t.Hash.String(), nil
}
