// Package local implements transport.Host over a directory on this
// machine: host NAME is the directory ROOT/NAME, and the absolute host
// path /etc/x is the file ROOT/NAME/etc/x. It serves tests and dry runs
// against a tree of hosts; it runs no commands and changes no owners.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cyrplan/cyrplan/internal/transport"
)

// Host is one host's directory. It is safe for concurrent use.
//
// The directory is opened once, as an os.Root, so no path can reach
// outside it, neither with ".." nor through a symbolic link (absolute
// symbolic links are refused altogether), and replacing the directory
// afterwards changes nothing: the Host keeps the directory it opened.
//
// Every operation resolves its path inside the directory once. Most
// (ReadFile, Lstat, WriteFile, CreateExclusive, MkdirAll, Sync) resolve
// the directory holding the last element, with one openat2 system call
// where the kernel has it (Linux 5.6 and later) and through the os.Root
// otherwise, and act on the last element by name with the *at system
// calls and O_NOFOLLOW: os.Root's own OpenFile follows a link there,
// whatever the flags. The others (Stat, ReadDir, Remove, Rename) go
// through the os.Root.
type Host struct {
	name  string
	dir   string // ROOT/NAME
	where string // name and dir, the prefix of every error

	throughRoot bool // resolve every path through the os.Root (tests)

	mu     sync.Mutex
	top    *hostDir // nil until the directory exists
	closed bool     // by Close
	dirty  bool     // renamed into since the last Sync
}

// hostDir is the host's directory, opened once: as an os.Root, and as a
// descriptor that openat2 resolves paths beneath in one system call.
type hostDir struct {
	root *os.Root
	dir  *os.File // the same directory
	fd   int      // dir's descriptor; -1 to resolve only through the root
}

var _ transport.Host = (*Host)(nil)

// New returns the host name kept in the directory root/name. The
// directory need not exist: reads then find nothing, and writes create
// it, as the "/" of a real host always exists.
func New(root, name string) *Host {
	dir := filepath.Join(root, name)
	return &Host{name: name, dir: dir, where: name + " (" + dir + ")"}
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// testHookRead, set by tests, runs in ReadFile between the fstat of the
// open file and the read.
var testHookRead func()

// ReadFile returns the content of the regular file at the host path p:
// one open, after which the size is known (fstat), and one read of that
// size. What stands at p is described first without following a link,
// and is never opened unless it is a regular file of at most
// MaxReadSize bytes.
func (h *Host) ReadFile(ctx context.Context, p string) ([]byte, error) {
	top, rel, err := h.open(ctx, p, false)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	dfd, _, name, err := top.parent(rel)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	defer unix.Close(dfd)
	data, _, err := readAt(dfd, name)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	return data, nil
}

// Inspect describes and reads paths one after the other, directory by
// directory: each directory holding some of them is opened once, and
// each path is then one fstatat and, for a regular file, one open, one
// fstat and one read.
func (h *Host) Inspect(ctx context.Context, paths []string) ([]transport.Entry, error) {
	out := make([]transport.Entry, len(paths))
	top, _, err := h.open(ctx, "/", false)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil // no host directory: nothing anywhere
	}
	if err != nil {
		return nil, h.fail("inspect", "/", err)
	}
	g, bad, err := group(paths)
	if err != nil {
		return nil, h.fail("inspect", paths[bad], err)
	}
	err = top.eachByDir(g, func(i, dfd int, name string, openErr error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if errors.Is(openErr, fs.ErrNotExist) {
			return nil // no directory, so nothing in it
		}
		if openErr != nil {
			return openErr
		}
		data, fi, err := readAt(dfd, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err == nil, errors.Is(err, transport.ErrNotRegular), errors.Is(err, transport.ErrTooLarge):
			out[i] = transport.Entry{Exists: true, Info: fi, Data: data}
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, h.fail("inspect", paths[g.failed], err)
	}
	return out, nil
}

// grouped are host paths in the order of the directories holding them,
// so that a pass over them opens each directory once.
type grouped struct {
	dirs, names []string // of each path, as split makes them
	order       []int    // indexes of the paths, by directory
	failed      int      // the path at which the last pass stopped
}

// group groups paths; a path that is not absolute is an error, and bad
// its index.
func group(paths []string) (g *grouped, bad int, err error) {
	g = &grouped{dirs: make([]string, len(paths)), names: make([]string, len(paths)), order: make([]int, len(paths))}
	for i, p := range paths {
		r, err := rel(p)
		if err != nil {
			return nil, i, err
		}
		g.dirs[i], g.names[i] = split(r)
		g.order[i] = i
	}
	slices.SortStableFunc(g.order, func(a, b int) int { return strings.Compare(g.dirs[a], g.dirs[b]) })
	return g, 0, nil
}

// eachByDir calls fn for every path of g, directory by directory, with
// the directory holding it open (dfd) or the error that opening it gave
// (openErr). It stops at the first error of fn, and g.failed says at
// which path.
func (top *hostDir) eachByDir(g *grouped, fn func(i, dfd int, name string, openErr error) error) error {
	dfd, open, openErr := -1, "", error(nil)
	defer func() {
		if dfd >= 0 {
			unix.Close(dfd)
		}
	}()
	for n, i := range g.order {
		if n == 0 || g.dirs[i] != open {
			if dfd >= 0 {
				unix.Close(dfd)
			}
			open = g.dirs[i]
			dfd, openErr = top.openDir(open)
		}
		if err := fn(i, dfd, g.names[i], openErr); err != nil {
			g.failed = i
			return err
		}
	}
	return nil
}

// readAt reads the regular file name in the directory dfd, and describes
// what stands there (a link as a link): when it cannot be read because
// it is not a regular file or too large, the error says so
// (ErrNotRegular, ErrTooLarge) and fi what it is.
func readAt(dfd int, name string) (data []byte, fi transport.FileInfo, err error) {
	var st unix.Stat_t
	if err := eintr(func() error { return unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return nil, fi, err
	}
	if fi = fileInfo(&st); transport.CheckReadable(fi) != nil {
		return nil, fi, transport.CheckReadable(fi)
	}
	// Something put there since the fstatat is opened without following
	// a link and without blocking (a FIFO), and the fstat of the open
	// file decides.
	var fd int
	err = eintr(func() (err error) {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		return err
	})
	if errors.Is(err, unix.ELOOP) {
		fi = transport.FileInfo{Mode: fs.ModeSymlink | 0o777}
		return nil, fi, transport.CheckReadable(fi)
	}
	if err != nil {
		return nil, fi, err
	}
	defer unix.Close(fd)
	if err := eintr(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, fi, err
	}
	if fi = fileInfo(&st); transport.CheckReadable(fi) != nil {
		return nil, fi, transport.CheckReadable(fi)
	}
	if testHookRead != nil {
		testHookRead()
	}
	// One byte more than the size: a read that fills it exactly to the
	// size is the whole file (a regular file reads short only at its
	// end); only a file that grew since the fstat fills the buffer, and
	// it is read on, to at most MaxReadSize+1.
	buf := make([]byte, st.Size+1)
	n, err := fdReader(fd).Read(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fi, err
	}
	if int64(n) < st.Size {
		m, err := io.ReadFull(fdReader(fd), buf[n:])
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fi, err
		}
		n += m
	}
	if n <= int(st.Size) {
		fi.Size = int64(n)
		return buf[:n], fi, nil
	}
	rest, err := io.ReadAll(io.LimitReader(fdReader(fd), transport.MaxReadSize+1-int64(n)))
	if err != nil {
		return nil, fi, err
	}
	if buf = append(buf, rest...); len(buf) > transport.MaxReadSize {
		return nil, fi, transport.ErrTooLarge
	}
	fi.Size = int64(len(buf))
	return buf, fi, nil
}

// fileInfo is what fstat described, as transport.FileInfo.
func fileInfo(st *unix.Stat_t) transport.FileInfo {
	mode := fs.FileMode(st.Mode & 0o777)
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFREG:
	default:
		mode |= fs.ModeIrregular
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return transport.FileInfo{Mode: mode, Size: st.Size, IsDir: mode.IsDir()}
}

// fdReader reads a descriptor.
type fdReader int

func (fd fdReader) Read(b []byte) (int, error) {
	var n int
	err := eintr(func() (err error) {
		n, err = unix.Read(int(fd), b)
		return err
	})
	switch {
	case err != nil:
		return 0, err
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// Lstat describes the host path p itself, without following a link.
func (h *Host) Lstat(ctx context.Context, p string) (transport.FileInfo, error) {
	top, rel, err := h.open(ctx, p, false)
	if err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	fi, err := top.lstat(rel)
	if err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	return fi, nil
}

// lstat describes rel itself.
func (top *hostDir) lstat(rel string) (transport.FileInfo, error) {
	dfd, _, name, err := top.parent(rel)
	if err != nil {
		return transport.FileInfo{}, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := eintr(func() error { return unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return transport.FileInfo{}, err
	}
	return fileInfo(&st), nil
}

// Stat describes the host path p, following symbolic links.
func (h *Host) Stat(ctx context.Context, p string) (transport.FileInfo, error) {
	top, rel, err := h.open(ctx, p, false)
	if err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	fi, err := top.root.Stat(rel)
	if err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	return transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

// WriteFiles writes every file's content to a temporary file next to
// it, with its mode, directory by directory; makes them all durable at
// once (syncfs); then renames each over its path. Sync makes the
// renames durable. The owner is ignored: the local transport keeps the
// files of many hosts under one user and does not chown.
func (h *Host) WriteFiles(ctx context.Context, files []transport.File) error {
	if len(files) == 0 {
		return nil
	}
	top, _, err := h.open(ctx, "/", true)
	if err != nil {
		return h.fail("write", files[0].Path, err)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	g, bad, err := group(paths)
	if err != nil {
		return h.fail("write", paths[bad], err)
	}
	temps := make([]string, len(files)) // "" until created, and again once renamed
	removeTemps := func() {
		top.eachByDir(g, func(i, dfd int, _ string, openErr error) error {
			if temps[i] != "" && openErr == nil {
				unix.Unlinkat(dfd, temps[i], 0)
			}
			return nil
		})
	}
	err = top.eachByDir(g, func(i, dfd int, _ string, openErr error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if openErr != nil {
			return openErr
		}
		tmp := transport.TempPrefix + strconv.FormatUint(rand.Uint64(), 36)
		if err := create(dfd, tmp, files[i].Data, files[i].Mode, syncEachFile); err != nil {
			return err
		}
		temps[i] = tmp
		return nil
	})
	if err == nil {
		if err = syncFS(top.dir); err != nil {
			g.failed = 0
		}
	}
	if err == nil {
		err = top.eachByDir(g, func(i, dfd int, name string, openErr error) error {
			if openErr != nil {
				return openErr
			}
			if err := eintr(func() error { return unix.Renameat(dfd, temps[i], dfd, name) }); err != nil {
				return err
			}
			temps[i] = ""
			return nil
		})
		h.mu.Lock()
		h.dirty = true // renamed into, all or some
		h.mu.Unlock()
	}
	if err != nil {
		removeTemps()
		return h.fail("write", paths[g.failed], err)
	}
	return nil
}

// Sync makes every rename since the last Sync durable, with one syncfs
// of the filesystem that holds the host directory.
func (h *Host) Sync(context.Context) error {
	h.mu.Lock()
	dirty, top := h.dirty, h.top
	h.dirty = false
	h.mu.Unlock()
	if !dirty {
		return nil
	}
	if err := syncFS(top.dir); err != nil {
		h.mu.Lock()
		h.dirty = true
		h.mu.Unlock()
		return h.fail("sync", "/", err)
	}
	return nil
}

// ReadDir lists the directory at the host path p, sorted by name.
func (h *Host) ReadDir(ctx context.Context, p string) ([]transport.DirEntry, error) {
	top, rel, err := h.open(ctx, p, false)
	if err != nil {
		return nil, h.fail("readdir", p, err)
	}
	// Opened through the root, which follows a link at p (as Stat does):
	// the entries are then described relative to the open directory.
	d, err := top.root.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, h.fail("readdir", p, err)
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, h.fail("readdir", p, err)
	}
	out := make([]transport.DirEntry, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, transport.DirEntry{Name: e.Name(), Info: transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}})
	}
	slices.SortFunc(out, func(a, b transport.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// CreateExclusive creates the file p with data, failing with an error
// that satisfies fs.ErrExist if p exists.
func (h *Host) CreateExclusive(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	top, rel, err := h.open(ctx, p, true)
	if err != nil {
		return h.fail("create", p, err)
	}
	dfd, _, name, err := top.parent(rel)
	if err != nil {
		return h.fail("create", p, err)
	}
	defer unix.Close(dfd)
	if err := create(dfd, name, data, mode, true); err != nil {
		return h.fail("create", p, err)
	}
	if err := eintr(func() error { return unix.Fsync(dfd) }); err != nil {
		return h.fail("create", p, err)
	}
	return nil
}

// MkdirAll creates the directory p and its missing parents (mode 0755)
// and sets the mode of p. The owner is ignored, as in WriteFile.
func (h *Host) MkdirAll(ctx context.Context, p string, mode fs.FileMode, _ transport.Owner) error {
	top, rel, err := h.open(ctx, p, true)
	if err != nil {
		return h.fail("mkdir", p, err)
	}
	if err := top.mkdirAll(rel, mode); err != nil {
		return h.fail("mkdir", p, err)
	}
	return nil
}

// mkdirAll makes rel a directory with mode, its missing parents first
// (mode 0755). Mostly the parent exists: one open of it, one mkdir, one
// open of the directory without following a link, one chmod. Modes are
// set explicitly so that the umask does not matter.
func (top *hostDir) mkdirAll(rel string, mode fs.FileMode) error {
	dfd, dir, name, err := top.parent(rel)
	if errors.Is(err, fs.ErrNotExist) && dir != "." {
		if err := top.mkdirAll(dir, 0o755); err != nil {
			return err
		}
		dfd, _, _, err = top.parent(rel)
	}
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := eintr(func() error { return unix.Mkdirat(dfd, name, 0o755) }); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	var fd int
	err = eintr(func() (err error) {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return fmt.Errorf("/%s is %s, not a directory; cyrplan never follows links where it writes", rel, transport.Kind(fileInfo(&st).Mode))
		}
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return eintr(func() error { return unix.Fchmod(fd, unixMode(mode)) })
}

// Remove deletes the file or empty directory p; a missing p is no error.
func (h *Host) Remove(ctx context.Context, p string) error {
	top, rel, err := h.open(ctx, p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no host directory, so no p either
	}
	if err != nil {
		return h.fail("remove", p, err)
	}
	if err := top.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h.fail("remove", p, err)
	}
	return nil
}

// Rename moves oldpath to newpath, replacing newpath atomically.
func (h *Host) Rename(ctx context.Context, oldpath, newpath string) error {
	top, oldrel, err := h.open(ctx, oldpath, false)
	if err != nil {
		return h.fail("rename", oldpath, err)
	}
	newrel, err := rel(newpath)
	if err != nil {
		return h.fail("rename", newpath, err)
	}
	if err := top.root.Rename(oldrel, newrel); err != nil {
		return transport.OpError(h.where, "rename", oldpath+" to "+newpath, err)
	}
	return nil
}

// Run returns transport.ErrNoExec: a directory cannot run commands.
func (h *Host) Run(context.Context, string, io.Reader, io.Writer, io.Writer) error {
	return transport.ErrNoExec
}

// Close closes the host's directory. Every operation afterwards fails
// with os.ErrClosed.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.top == nil {
		return nil
	}
	return errors.Join(h.top.dir.Close(), h.top.root.Close())
}

// open checks ctx and returns the host directory, opened once, and p
// relative to it. With mkdir the host directory is created if missing;
// without, a missing one gives fs.ErrNotExist.
func (h *Host) open(ctx context.Context, p string, mkdir bool) (*hostDir, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	rel, err := rel(p)
	if err != nil {
		return nil, "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, "", os.ErrClosed
	case h.top != nil:
		return h.top, rel, nil
	}
	if mkdir {
		if err := os.MkdirAll(h.dir, 0o755); err != nil {
			return nil, "", err
		}
	}
	r, err := os.OpenRoot(h.dir)
	if err != nil {
		return nil, "", err
	}
	// The descriptor comes from the root, so both are the same
	// directory even if h.dir is replaced meanwhile.
	d, err := r.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		r.Close()
		return nil, "", err
	}
	h.top = &hostDir{root: r, dir: d, fd: int(d.Fd())}
	if h.throughRoot {
		h.top.fd = -1
	}
	return h.top, rel, nil
}

// rel turns the absolute host path p into a path relative to the host
// directory. It does not clean p: os.Root refuses a ".." that leaves the
// directory, where cleaning would silently drop it.
func rel(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", errors.New("not an absolute path")
	}
	if r := strings.TrimLeft(p, "/"); r != "" {
		return r, nil
	}
	return ".", nil
}

// parent opens the directory dir that holds the last element of rel,
// and returns it with that element's name: a name without a slash,
// which the *at system calls resolve inside that directory. When the
// last element is "." or ".." (or rel ends in a slash), dir is rel
// itself and name is ".". The caller closes the descriptor.
func (top *hostDir) parent(rel string) (dfd int, dir, name string, err error) {
	dir, name = split(rel)
	dfd, err = top.openDir(dir)
	return dfd, dir, name, err
}

// split is rel as parent opens it: the directory, and the name in it.
func split(rel string) (dir, name string) {
	dir, name = ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	if name == "" || name == "." || name == ".." {
		dir, name = rel, "."
	}
	return dir, name
}

// noOpenat2 is set once the kernel said it has no openat2.
var noOpenat2 atomic.Bool

// errEscapes is what openat2 says (EXDEV) of a path that would leave the
// host directory.
var errEscapes = errors.New("path escapes from the host directory")

// openDir opens the directory dir: beneath the host directory with one
// openat2, or through the root where the kernel has no openat2.
//
// Through the root, the directory is opened O_NONBLOCK only so that
// package os, which tries every file it opens with the poller, does not
// first make it non-blocking and then blocking again (four fcntl).
func (top *hostDir) openDir(dir string) (int, error) {
	if top.fd >= 0 && !noOpenat2.Load() {
		fd, ok, err := openBeneath(top.fd, dir, unix.O_RDONLY|unix.O_DIRECTORY)
		if ok {
			if errors.Is(err, unix.EXDEV) {
				err = errEscapes
			}
			return fd, err
		}
		noOpenat2.Store(true)
	}
	d, err := top.root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	defer d.Close()
	return unix.FcntlInt(d.Fd(), unix.F_DUPFD_CLOEXEC, 0)
}

// create makes the new file name in the directory dfd with mode and
// data (with sync, synced to disk), or removes it again and returns an
// error.
func create(dfd int, name string, data []byte, mode fs.FileMode, sync bool) (err error) {
	var fd int
	if err := eintr(func() (err error) {
		fd, err = unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	}); err != nil {
		return err
	}
	defer func() {
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(dfd, name, 0)
		}
	}()
	// The mode is set before the data arrives, so that a file meant
	// to be private is never readable by others.
	if err := eintr(func() error { return unix.Fchmod(fd, unixMode(mode)) }); err != nil {
		return err
	}
	for len(data) > 0 {
		var n int
		if err := eintr(func() (err error) {
			n, err = unix.Write(fd, data)
			return err
		}); err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		data = data[n:]
	}
	if !sync {
		return nil
	}
	return eintr(func() error { return unix.Fsync(fd) })
}

// unixMode is mode as chmod(2) takes it.
func unixMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if mode&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if mode&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}

// eintr calls f again while a signal interrupts it, as package os does.
func eintr(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// fail wraps err from operation op on the host path p, keeping what
// errors.Is needs (fs.ErrNotExist, fs.ErrExist) and naming the host.
func (h *Host) fail(op, p string, err error) error {
	return transport.OpError(h.where, op, p, err)
}
