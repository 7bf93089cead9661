// Package local implements transport.Host over a directory on this
// machine: host NAME is the directory ROOT/NAME, and the absolute host
// path /etc/x is the file ROOT/NAME/etc/x. It serves tests and dry runs
// against a tree of hosts; it runs no commands and changes no owners.
package local

import (
	"bytes"
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

	"github.com/cyrplan/cyrplan/internal/transport"
)

// Host is one host's directory. It is safe for concurrent use.
//
// The directory is opened once, as an os.Root, so no path can reach
// outside it, neither with ".." nor through a symbolic link (absolute
// symbolic links are refused altogether).
type Host struct {
	name  string
	dir   string // ROOT/NAME
	where string // name and dir, the prefix of every error

	mu    sync.Mutex
	root  *os.Root        // nil until the directory exists
	dirty map[string]bool // directories renamed into since the last Sync
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

// ReadFile returns the content of the regular file at the host path p;
// anything else there is never opened.
func (h *Host) ReadFile(ctx context.Context, p string) ([]byte, error) {
	r, rel, err := h.open(ctx, p, false)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	fi, err := r.Lstat(rel)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	if err := transport.CheckReadable(transport.FileInfo{Mode: fi.Mode(), Size: fi.Size()}); err != nil {
		return nil, h.fail("read", p, err)
	}
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, transport.MaxReadSize+1)); err != nil {
		return nil, h.fail("read", p, err)
	}
	if buf.Len() > transport.MaxReadSize {
		return nil, h.fail("read", p, transport.ErrTooLarge)
	}
	return buf.Bytes(), nil
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
// file next to it, syncs it, sets its mode and renames it over p; Sync
// makes the renames durable, once per directory. The owner is ignored:
// the local transport keeps the files of many hosts under one user and
// does not chown.
func (h *Host) WriteFile(ctx context.Context, p string, data []byte, mode fs.FileMode, _ transport.Owner) error {
	r, rel, err := h.open(ctx, p, true)
	if err != nil {
		return h.fail("write", p, err)
	}
	tmp := path.Join(path.Dir(rel), transport.TempPrefix+strconv.FormatUint(rand.Uint64(), 36))
	if err := create(r, tmp, data, mode); err != nil {
		return h.fail("write", p, err)
	}
	if err := r.Rename(tmp, rel); err != nil {
		r.Remove(tmp)
		return h.fail("write", p, err)
	}
	h.mu.Lock()
	h.dirty[path.Dir(rel)] = true
	h.mu.Unlock()
	return nil
}

// Sync makes every rename since the last Sync durable: each directory
// written into is synced once.
func (h *Host) Sync(ctx context.Context) error {
	h.mu.Lock()
	dirs := slices.Sorted(maps.Keys(h.dirty))
	clear(h.dirty)
	r := h.root
	h.mu.Unlock()
	for _, d := range dirs {
		if err := syncDir(r, d); err != nil {
			return h.fail("sync", "/"+d, err)
		}
	}
	return nil
}

// ReadDir lists the directory at the host path p, sorted by name.
func (h *Host) ReadDir(ctx context.Context, p string) ([]transport.DirEntry, error) {
	r, rel, err := h.open(ctx, p, false)
	if err != nil {
		return nil, h.fail("readdir", p, err)
	}
	d, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
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
	if err := create(r, rel, data, mode); err != nil {
		return h.fail("create", p, err)
	}
	if err := syncDir(r, path.Dir(rel)); err != nil {
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
			continue // made concurrently; checked by Chmod below
		}
		if err == nil {
			err = r.Chmod(missing[i], 0o755)
		}
		if err != nil {
			return h.fail("mkdir", p, err)
		}
	}
	// The mode is set on p itself, through a handle opened without
	// following a link: one put there since is refused.
	d, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
	if err != nil {
		return h.fail("mkdir", p, err)
	}
	defer d.Close()
	if err := d.Chmod(mode); err != nil {
		return h.fail("mkdir", p, err)
	}
	return nil
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

// Close closes the host's directory.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.root == nil {
		return nil
	}
	err := h.root.Close()
	h.root = nil
	return err
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
	if h.root != nil {
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

// create makes the new file name in r with mode and data, synced to
// disk, or removes it again and returns an error.
func create(r *os.Root, name string, data []byte, mode fs.FileMode) (err error) {
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			r.Remove(name)
		}
	}()
	// The mode is set before the data arrives, so that a file meant
	// to be private is never readable by others.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// syncDir makes a rename or create in dir durable.
func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// fail wraps err from operation op on the host path p, keeping what
// errors.Is needs (fs.ErrNotExist, fs.ErrExist) and naming the host.
func (h *Host) fail(op, p string, err error) error {
	return transport.OpError(h.where, op, p, err)
}
