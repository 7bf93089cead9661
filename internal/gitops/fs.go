package gitops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxLinks bounds the symbolic links followed to resolve one path.
const maxLinks = 40

var (
	errIsDir   = errors.New("is a directory")
	errNotDir  = errors.New("not a directory")
	errLoop    = errors.New("too many levels of symbolic links")
	errOutside = errors.New("symbolic link leads outside the repository")
)

// FS returns the layout directory as it is at commit (a full commit id,
// or any revision Resolve accepts), read from git's objects. Names in it
// are relative to the layout directory. Like os.DirFS it follows symbolic
// links, but only to files in the same commit. Submodules are left out.
// Files are 0644 or 0755 and all have the commit time as ModTime.
func (r *Repo) FS(commit string) (fs.FS, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(commit)
	if err != nil {
		return nil, err
	}
	c, err := r.git.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	root, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	f := &treeFS{r: r, root: root.Hash, when: c.Committer.When}
	n, err := f.find(r.sub, true, new(int))
	if err == nil && n.mode != filemode.Dir {
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("layout directory %s does not exist at commit %s", r.sub, h)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s: %s: %w", h, r.sub, err)
	}
	return f, nil
}

// treeFS is the file system FS returns.
type treeFS struct {
	r    *Repo
	root plumbing.Hash // the commit's tree
	when time.Time
}

var (
	_ fs.ReadDirFS   = (*treeFS)(nil)
	_ fs.StatFS      = (*treeFS)(nil)
	_ fs.ReadLinkFS  = (*treeFS)(nil)
	_ fs.ReadDirFile = (*dirFile)(nil)
)

// node is a resolved tree entry.
type node struct {
	name string // as looked up, not the link's target
	mode filemode.FileMode
	hash plumbing.Hash
	path string // from the root of the tree, links resolved
}

// find resolves p, a clean slash-separated path from the root of the
// tree. It follows links in every element but the last, and in the last
// one too if follow is set. hops counts the links followed so far in
// resolving the path asked for.
func (f *treeFS) find(p string, follow bool, hops *int) (node, error) {
	if p == "." {
		return node{name: ".", mode: filemode.Dir, hash: f.root, path: "."}, nil
	}
	dir, base := path.Split(p)
	parent, err := f.find(path.Clean(dir), true, hops)
	if err != nil {
		return node{}, err
	}
	if parent.mode != filemode.Dir {
		return node{}, fs.ErrNotExist
	}
	t, err := f.r.git.TreeObject(parent.hash)
	if err != nil {
		return node{}, err
	}
	e, err := t.FindEntry(base)
	if errors.Is(err, object.ErrEntryNotFound) {
		return node{}, fs.ErrNotExist
	}
	if err != nil {
		return node{}, err
	}
	if e.Mode == filemode.Submodule {
		return node{}, fs.ErrNotExist
	}
	n := node{name: base, mode: e.Mode, hash: e.Hash, path: path.Join(parent.path, base)}
	if n.mode != filemode.Symlink || !follow {
		return n, nil
	}
	if *hops == maxLinks {
		return node{}, errLoop
	}
	*hops++
	target, err := f.blob(n.hash)
	if err != nil {
		return node{}, err
	}
	to := path.Join(parent.path, string(target))
	if path.IsAbs(string(target)) || to == ".." || strings.HasPrefix(to, "../") {
		return node{}, errOutside
	}
	return f.find(to, true, hops)
}

// lookup resolves name, a path in the file system, for operation op.
func (f *treeFS) lookup(op, name string, follow bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.find(path.Join(f.r.sub, name), follow, new(int))
	if err != nil {
		return node{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	n.name = path.Base(name)
	return n, nil
}

func (f *treeFS) blob(h plumbing.Hash) ([]byte, error) {
	b, err := f.r.git.BlobObject(h)
	if err != nil {
		return nil, err
	}
	rc, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// info returns n's FileInfo; the size of a file costs a look at its blob.
func (f *treeFS) info(n node) (fs.FileInfo, error) {
	var size int64
	if n.mode != filemode.Dir {
		o, err := f.r.git.Storer.EncodedObject(plumbing.BlobObject, n.hash)
		if err != nil {
			return nil, err
		}
		size = o.Size()
	}
	return f.sizedInfo(n, size)
}

func (f *treeFS) sizedInfo(n node, size int64) (fs.FileInfo, error) {
	mode, err := n.mode.ToOSFileMode()
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: n.name, size: size, mode: mode, mod: f.when}, nil
}

// readDir lists directory n, sorted by name.
func (f *treeFS) readDir(n node) ([]fs.DirEntry, error) {
	t, err := f.r.git.TreeObject(n.hash)
	if err != nil {
		return nil, err
	}
	var list []fs.DirEntry
	for _, e := range t.Entries {
		bad := e.Name == "." || strings.Contains(e.Name, "/") || !fs.ValidPath(e.Name)
		if bad || e.Mode == filemode.Submodule {
			continue
		}
		list = append(list, &dirEntry{f: f, n: node{name: e.Name, mode: e.Mode, hash: e.Hash}})
	}
	// Git sorts a directory as if its name ended in a slash.
	slices.SortFunc(list, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return list, nil
}

// Open implements fs.FS.
func (f *treeFS) Open(name string) (fs.File, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	fh, err := f.open(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return fh, nil
}

func (f *treeFS) open(n node) (fs.File, error) {
	if n.mode == filemode.Dir {
		fi, err := f.sizedInfo(n, 0)
		if err != nil {
			return nil, err
		}
		list, err := f.readDir(n)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: fi, list: list}, nil
	}
	data, err := f.blob(n.hash)
	if err != nil {
		return nil, err
	}
	fi, err := f.sizedInfo(n, int64(len(data)))
	if err != nil {
		return nil, err
	}
	return &file{Reader: bytes.NewReader(data), info: fi}, nil
}

// ReadDir implements fs.ReadDirFS.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if n.mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	list, err := f.readDir(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return list, nil
}

// Stat implements fs.StatFS.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) { return f.stat("stat", name, true) }

// Lstat implements fs.ReadLinkFS.
func (f *treeFS) Lstat(name string) (fs.FileInfo, error) { return f.stat("lstat", name, false) }

func (f *treeFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.lookup(op, name, follow)
	if err != nil {
		return nil, err
	}
	fi, err := f.info(n)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return fi, nil
}

// ReadLink implements fs.ReadLinkFS.
func (f *treeFS) ReadLink(name string) (string, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := f.blob(n.hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(target), nil
}

// file is an open regular file, its content read in full.
type file struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

// dirFile is an open directory.
type dirFile struct {
	info fs.FileInfo
	list []fs.DirEntry // not yet read
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errIsDir}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		list := d.list
		d.list = nil
		return list, nil
	}
	if len(d.list) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.list))
	list := d.list[:n:n]
	d.list = d.list[n:]
	return list, nil
}

// dirEntry is an entry of a directory; like os.ReadDir it describes a link
// itself, not its target.
type dirEntry struct {
	f *treeFS
	n node
}

func (e *dirEntry) Name() string { return e.n.name }
func (e *dirEntry) IsDir() bool  { return e.n.mode == filemode.Dir }

func (e *dirEntry) Type() fs.FileMode {
	m, _ := e.n.mode.ToOSFileMode()
	return m.Type()
}

func (e *dirEntry) Info() (fs.FileInfo, error) {
	e.f.r.mu.Lock()
	defer e.f.r.mu.Unlock()
	return e.f.info(e.n)
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
	mod  time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mod }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }
