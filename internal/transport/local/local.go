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
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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
// Every operation resolves its path through the root once. Those that
// must not follow a link at the last element (ReadFile, WriteFile,
// CreateExclusive, MkdirAll) resolve the directory holding it through
// the root and act on the last element by name with the *at system
// calls and O_NOFOLLOW: os.Root's own OpenFile follows a link there,
// whatever the flags.
type Host struct {
	name  string
	dir   string // ROOT/NAME
	where string // name and dir, the prefix of every error

	mu     sync.Mutex
	root   *os.Root        // nil until the directory exists
	closed bool            // by Close
	dirty  map[string]bool // directories renamed into since the last Sync
}

var _ transport.Host = (*Host)(nil)

// New returns the host name kept in the directory root/name. The
// directory need not exist: reads then find nothing, and writes create
// it, as the "/" of a real host always exists.
func New(root, name string) *Host {
	dir := filepath.Join(root, name)
	return &Host{name: name, dir: dir, where: name + " (" + dir + ")", dirty: map[string]bool{}}
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// testHookRead, set by tests, runs in ReadFile between the fstat of the
// open file and the read.
var testHookRead func()

// ReadFile returns the content of the regular file at the host path p:
// one open, after which the size is known (fstat), one read of that size
// into a buffer of that size, and one more read that finds the end. What
// stands at p is described first without following a link, and is
// never opened unless it is a regular file of at most MaxReadSize bytes.
func (h *Host) ReadFile(ctx context.Context, p string) ([]byte, error) {
	r, rel, err := h.open(ctx, p, false)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	d, _, name, err := parent(r, rel)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	defer d.Close()
	data, err := readAt(int(d.Fd()), name)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	return data, nil
}

// readAt reads the regular file name in the directory dfd.
func readAt(dfd int, name string) ([]byte, error) {
	var st unix.Stat_t
	if err := eintr(func() error { return unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return nil, err
	}
	if err := checkReadable(&st); err != nil {
		return nil, err
	}
	// Something put there since the fstatat is opened without following
	// a link and without blocking (a FIFO), and the fstat of the open
	// file decides.
	var fd int
	err := eintr(func() (err error) {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		return err
	})
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%w: it is %s", transport.ErrNotRegular, transport.Kind(fs.ModeSymlink))
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := eintr(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, err
	}
	if err := checkReadable(&st); err != nil {
		return nil, err
	}
	if testHookRead != nil {
		testHookRead()
	}
	// One byte more than the size: only a file that grew since the fstat
	// fills the buffer, and it is read on, to at most MaxReadSize+1.
	buf := make([]byte, st.Size+1)
	n, err := io.ReadFull(fdReader(fd), buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return buf[:n], nil
	}
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(fdReader(fd), transport.MaxReadSize+1-int64(n)))
	if err != nil {
		return nil, err
	}
	if buf = append(buf, rest...); len(buf) > transport.MaxReadSize {
		return nil, transport.ErrTooLarge
	}
	return buf, nil
}

// checkReadable is transport.CheckReadable for what fstat described.
func checkReadable(st *unix.Stat_t) error {
	var mode fs.FileMode
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFDIR:
		mode = fs.ModeDir
	case unix.S_IFLNK:
		mode = fs.ModeSymlink
	case unix.S_IFIFO:
		mode = fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode = fs.ModeSocket
	case unix.S_IFCHR:
		mode = fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode = fs.ModeDevice
	case unix.S_IFREG:
	default:
		mode = fs.ModeIrregular
	}
	return transport.CheckReadable(transport.FileInfo{Mode: mode, Size: st.Size})
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
	r, rel, err := h.open(ctx, p, false)
	if err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	fi, err := r.Lstat(rel)
	if err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	return transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

// Stat describes the host path p, following symbolic links.
func (h *Host) Stat(ctx context.Context, p string) (transport.FileInfo, error) {
	r, rel, err := h.open(ctx, p, false)
	if err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	fi, err := r.Stat(rel)
	if err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	return transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

// WriteFile replaces the file at p atomically: it writes a temporary
// file next to it, sets its mode, syncs it and renames it over p; Sync
// makes the renames durable, once per directory. The owner is ignored:
// the local transport keeps the files of many hosts under one user and
// does not chown.
func (h *Host) WriteFile(ctx context.Context, p string, data []byte, mode fs.FileMode, _ transport.Owner) error {
	r, rel, err := h.open(ctx, p, true)
	if err != nil {
		return h.fail("write", p, err)
	}
	d, dir, name, err := parent(r, rel)
	if err != nil {
		return h.fail("write", p, err)
	}
	defer d.Close()
	dfd := int(d.Fd())
	tmp := transport.TempPrefix + strconv.FormatUint(rand.Uint64(), 36)
	if err := create(dfd, tmp, data, mode); err != nil {
		return h.fail("write", p, err)
	}
	if err := eintr(func() error { return unix.Renameat(dfd, tmp, dfd, name) }); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return h.fail("write", p, err)
	}
	h.mu.Lock()
	h.dirty[dir] = true
	h.mu.Unlock()
	return nil
}

// Sync makes every rename since the last Sync durable: each directory
// written into is synced once. One that is gone has nothing to keep; one
// that fails stays to sync, with those after it, at the next Sync.
func (h *Host) Sync(context.Context) error {
	h.mu.Lock()
	dirs := slices.Sorted(maps.Keys(h.dirty))
	clear(h.dirty)
	r := h.root
	h.mu.Unlock()
	for i, d := range dirs {
		if err := syncDir(r, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			h.mu.Lock()
			for _, d := range dirs[i:] {
				h.dirty[d] = true
			}
			h.mu.Unlock()
			return h.fail("sync", "/"+d, err)
		}
	}
	return nil
}

// syncDir makes the renames into the directory dir of r durable.
func syncDir(r *os.Root, dir string) error {
	d, err := r.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadDir lists the directory at the host path p, sorted by name.
func (h *Host) ReadDir(ctx context.Context, p string) ([]transport.DirEntry, error) {
	r, rel, err := h.open(ctx, p, false)
	if err != nil {
		return nil, h.fail("readdir", p, err)
	}
	// Opened through the root, which follows a link at p (as Stat does):
	// the entries are then described relative to the open directory.
	d, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
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
	r, rel, err := h.open(ctx, p, true)
	if err != nil {
		return h.fail("create", p, err)
	}
	d, _, name, err := parent(r, rel)
	if err != nil {
		return h.fail("create", p, err)
	}
	defer d.Close()
	if err := create(int(d.Fd()), name, data, mode); err != nil {
		return h.fail("create", p, err)
	}
	if err := d.Sync(); err != nil {
		return h.fail("create", p, err)
	}
	return nil
}

// MkdirAll creates the directory p and its missing parents (mode 0755)
// and sets the mode of p. The owner is ignored, as in WriteFile.
func (h *Host) MkdirAll(ctx context.Context, p string, mode fs.FileMode, _ transport.Owner) error {
	r, rel, err := h.open(ctx, p, true)
	if err != nil {
		return h.fail("mkdir", p, err)
	}
	// Mostly p exists: set its mode, and done.
	if chmodDir(r, rel, mode) == nil {
		return nil
	}
	// Find the missing directories, innermost first, then create them
	// outermost first. Modes are set explicitly so that the umask does
	// not matter.
	var missing []string
	for d := rel; d != "."; d = path.Dir(d) {
		fi, err := r.Lstat(d)
		if err == nil {
			if !fi.IsDir() {
				return h.fail("mkdir", p, fmt.Errorf("/%s is %s, not a directory; cyrplan never follows links where it writes", d, transport.Kind(fi.Mode())))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return h.fail("mkdir", p, err)
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		err := r.Mkdir(missing[i], 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue // made concurrently; checked by chmodDir below
		}
		if err == nil && i > 0 { // p itself gets its mode below
			err = chmodDir(r, missing[i], 0o755)
		}
		if err != nil {
			return h.fail("mkdir", p, err)
		}
	}
	if err := chmodDir(r, rel, mode); err != nil {
		return h.fail("mkdir", p, err)
	}
	return nil
}

// chmodDir sets the mode of the directory rel of r through a descriptor
// opened without following a link: a link there is refused.
func chmodDir(r *os.Root, rel string, mode fs.FileMode) error {
	d, _, name, err := parent(r, rel)
	if err != nil {
		return err
	}
	defer d.Close()
	var fd int
	if err := eintr(func() (err error) {
		fd, err = unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	}); err != nil {
		return err
	}
	defer unix.Close(fd)
	return eintr(func() error { return unix.Fchmod(fd, unixMode(mode)) })
}

// Remove deletes the file or empty directory p; a missing p is no error.
func (h *Host) Remove(ctx context.Context, p string) error {
	r, rel, err := h.open(ctx, p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no host directory, so no p either
	}
	if err != nil {
		return h.fail("remove", p, err)
	}
	if err := r.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h.fail("remove", p, err)
	}
	return nil
}

// Rename moves oldpath to newpath, replacing newpath atomically.
func (h *Host) Rename(ctx context.Context, oldpath, newpath string) error {
	r, oldrel, err := h.open(ctx, oldpath, false)
	if err != nil {
		return h.fail("rename", oldpath, err)
	}
	newrel, err := rel(newpath)
	if err != nil {
		return h.fail("rename", newpath, err)
	}
	if err := r.Rename(oldrel, newrel); err != nil {
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
	if h.root == nil {
		return nil
	}
	return h.root.Close()
}

// open checks ctx and returns the host directory's root, opened once,
// and p relative to it. With mkdir the host directory is created if
// missing; without, a missing one gives fs.ErrNotExist.
func (h *Host) open(ctx context.Context, p string, mkdir bool) (*os.Root, string, error) {
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
	case h.root != nil:
		return h.root, rel, nil
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
	h.root = r
	return r, rel, nil
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

// parent opens, through r, the directory dir that holds the last element
// of rel, and returns it with that element's name: a name without a
// slash, which the *at system calls resolve inside that directory. When
// the last element is "." or ".." (or rel ends in a slash), dir is rel
// itself, resolved by r, and name is ".".
//
// The directory is opened O_NONBLOCK only so that package os, which
// tries every file it opens with the poller, does not first make it
// non-blocking and then blocking again (four fcntl).
func parent(r *os.Root, rel string) (d *os.File, dir, name string, err error) {
	dir, name = ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	if name == "" || name == "." || name == ".." {
		dir, name = rel, "."
	}
	d, err = r.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	return d, dir, name, err
}

// create makes the new file name in the directory dfd with mode and
// data, synced to disk, or removes it again and returns an error.
func create(dfd int, name string, data []byte, mode fs.FileMode) (err error) {
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
