package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/transport"
)

var _ transport.Host = (*Host)(nil)

// Name returns the host's name in the layout.
func (h *Host) Name() string { return h.cfg.Name }

// ReadFile returns the content of the regular file p. Anything else at
// p is never opened (a FIFO would block the SFTP server).
func (h *Host) ReadFile(ctx context.Context, p string) ([]byte, error) {
	fi, err := h.Lstat(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckReadable(fi); err != nil {
		return nil, h.fail("read", p, err)
	}
	return h.read(ctx, p)
}

// inspectAtOnce is how many paths Inspect has in flight.
const inspectAtOnce = 16

// Inspect describes each path with an SFTP lstat and reads the regular
// files among them, inspectAtOnce paths at once.
func (h *Host) Inspect(ctx context.Context, paths []string) ([]transport.Entry, error) {
	out := make([]transport.Entry, len(paths))
	errs := make([]error, len(paths))
	idx := make([]int, len(paths))
	for i := range idx {
		idx[i] = i
	}
	parallel.Each(idx, inspectAtOnce, func(i int) {
		out[i], errs[i] = h.inspect(ctx, paths[i])
	})
	return out, errors.Join(errs...)
}

// inspect is Inspect of one path.
func (h *Host) inspect(ctx context.Context, p string) (transport.Entry, error) {
	fi, err := h.Lstat(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return transport.Entry{}, nil
	}
	if err != nil {
		return transport.Entry{}, err
	}
	e := transport.Entry{Exists: true, Info: fi}
	if transport.CheckReadable(fi) != nil {
		return e, nil
	}
	data, err := h.read(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return transport.Entry{}, nil
	}
	e.Data = append([]byte{}, data...) // not nil, even when empty
	return e, err
}

// read returns the content of p, which Lstat found a regular file.
func (h *Host) read(ctx context.Context, p string) ([]byte, error) {
	defer h.request(ctx)()
	f, err := h.sftp.Open(p)
	if err != nil {
		return nil, h.fail("read", p, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, transport.MaxReadSize+1)); err != nil {
		return nil, h.fail("read", p, err)
	}
	if buf.Len() > transport.MaxReadSize {
		return nil, h.fail("read", p, transport.ErrTooLarge)
	}
	return buf.Bytes(), nil
}

// Lstat describes p itself, without following a symbolic link.
func (h *Host) Lstat(ctx context.Context, p string) (transport.FileInfo, error) {
	if err := check(ctx, p); err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	fi, err := h.sftp.Lstat(p)
	if err != nil {
		return transport.FileInfo{}, h.fail("lstat", p, err)
	}
	return transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

// Stat describes p, following symbolic links.
func (h *Host) Stat(ctx context.Context, p string) (transport.FileInfo, error) {
	if err := check(ctx, p); err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	fi, err := h.sftp.Stat(p)
	if err != nil {
		return transport.FileInfo{}, h.fail("stat", p, err)
	}
	return transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

// ReadDir lists the directory p, sorted by name.
func (h *Host) ReadDir(ctx context.Context, p string) ([]transport.DirEntry, error) {
	if err := check(ctx, p); err != nil {
		return nil, h.fail("readdir", p, err)
	}
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return nil, h.fail("readdir", p, err)
	}
	infos, err := h.sftp.ReadDir(p)
	if err != nil {
		return nil, h.fail("readdir", p, err)
	}
	out := make([]transport.DirEntry, 0, len(infos))
	for _, fi := range infos {
		out = append(out, transport.DirEntry{Name: fi.Name(), Info: transport.FileInfo{Mode: fi.Mode(), Size: fi.Size(), IsDir: fi.IsDir()}})
	}
	slices.SortFunc(out, func(a, b transport.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// WriteFiles replaces each file's path atomically. For each it creates
// a temporary file next to it (O_EXCL), sets its owner and mode, writes
// and syncs it (if the server offers fsync@openssh.com, as OpenSSH
// does); then it renames each over its path with
// posix-rename@openssh.com. The owners' names are looked up in the
// host's /etc/passwd and /etc/group.
func (h *Host) WriteFiles(ctx context.Context, files []transport.File) error {
	var temps []string // of files[:len(temps)]
	removeTemps := func() {
		for _, tmp := range temps {
			if tmp != "" {
				h.sftp.Remove(tmp)
			}
		}
	}
	for _, f := range files {
		if err := check(ctx, f.Path); err != nil {
			removeTemps()
			return h.fail("write", f.Path, err)
		}
		tmp, err := h.temp(ctx, f)
		if err != nil {
			removeTemps()
			return h.fail("write", f.Path, err)
		}
		temps = append(temps, tmp)
	}
	for i, f := range files {
		if err := check(ctx, f.Path); err != nil {
			removeTemps()
			return h.fail("write", f.Path, err)
		}
		done := h.request(ctx)
		err := h.rename(temps[i], f.Path)
		done()
		if err != nil {
			removeTemps()
			return h.fail("write", f.Path, err)
		}
		temps[i] = ""
	}
	return nil
}

// temp writes f to a new temporary file next to f.Path and returns its
// path.
func (h *Host) temp(ctx context.Context, f transport.File) (string, error) {
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return "", err
	}
	uid, gid, err := h.lookupOwner(f.Owner)
	if err != nil {
		return "", err
	}
	tmp := path.Join(path.Dir(f.Path), transport.TempPrefix+strconv.FormatUint(rand.Uint64(), 36))
	if err := h.create(tmp, f.Data, f.Mode, uid, gid); err != nil {
		return "", err
	}
	return tmp, nil
}

// CreateExclusive creates p with data only if p does not exist yet.
func (h *Host) CreateExclusive(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	if err := check(ctx, p); err != nil {
		return h.fail("create", p, err)
	}
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return h.fail("create", p, err)
	}
	if err := h.create(p, data, mode, -1, -1); err != nil {
		return h.fail("create", p, err)
	}
	return nil
}

// create makes the new file p with owner uid:gid (-1 keeps one), mode
// and data, or removes it again and returns an error. If p exists, the
// error satisfies fs.ErrExist.
func (h *Host) create(p string, data []byte, mode fs.FileMode, uid, gid int) (err error) {
	f, err := h.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		// SFTP v3 has no status for "exists" (OpenSSH says "Failure").
		if _, serr := h.sftp.Lstat(p); serr == nil {
			return fs.ErrExist
		}
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			h.sftp.Remove(p)
		}
	}()
	// Owner first, as chown clears set-id bits; the mode before the
	// data, so that a private file is never readable by others.
	if err := h.chown(p, uid, gid); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if _, ok := h.sftp.HasExtension("fsync@openssh.com"); ok {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return f.Close()
}

// MkdirAll creates p and its missing parents (mode 0755), then sets the
// owner and mode of p.
func (h *Host) MkdirAll(ctx context.Context, p string, mode fs.FileMode, owner transport.Owner) error {
	if err := check(ctx, p); err != nil {
		return h.fail("mkdir", p, err)
	}
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return h.fail("mkdir", p, err)
	}
	uid, gid, err := h.lookupOwner(owner)
	if err != nil {
		return h.fail("mkdir", p, err)
	}
	// Find the missing directories, innermost first, then create them
	// outermost first. Modes are set explicitly so that the umask on
	// the host does not matter.
	var missing []string
	for d := path.Clean(p); d != "/"; d = path.Dir(d) {
		fi, err := h.sftp.Lstat(d)
		if err == nil {
			if !fi.IsDir() {
				return h.fail("mkdir", p, fmt.Errorf("%s is %s, not a directory; cyrplan never follows links where it writes",
					d, transport.Kind(fi.Mode())))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return h.fail("mkdir", p, err)
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := h.sftp.Mkdir(missing[i]); err != nil {
			if fi, serr := h.sftp.Stat(missing[i]); serr == nil && fi.IsDir() {
				continue // made concurrently by another caller
			}
			return h.fail("mkdir", p, err)
		}
		if err := h.sftp.Chmod(missing[i], 0o755); err != nil {
			return h.fail("mkdir", p, err)
		}
	}
	// Owner and mode are set on p itself: a link put there since is
	// refused, never followed.
	if fi, err := h.sftp.Lstat(p); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is %s, not a directory; cyrplan never follows links where it writes", p, transport.Kind(fi.Mode()))
		}
		return h.fail("mkdir", p, err)
	}
	if err := h.chown(p, uid, gid); err != nil {
		return h.fail("mkdir", p, err)
	}
	if err := h.sftp.Chmod(p, mode); err != nil {
		return h.fail("mkdir", p, err)
	}
	return nil
}

// Remove deletes the file or empty directory p; a missing p is no error.
func (h *Host) Remove(ctx context.Context, p string) error {
	if err := check(ctx, p); err != nil {
		return h.fail("remove", p, err)
	}
	defer h.request(ctx)()
	if err := h.startSFTP(); err != nil {
		return h.fail("remove", p, err)
	}
	if err := h.sftp.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h.fail("remove", p, err)
	}
	return nil
}

// Rename moves oldpath to newpath, replacing newpath atomically.
func (h *Host) Rename(ctx context.Context, oldpath, newpath string) error {
	err := check(ctx, oldpath)
	if err == nil {
		err = check(ctx, newpath)
	}
	if err == nil {
		defer h.request(ctx)()
		err = h.startSFTP()
	}
	if err == nil {
		err = h.rename(oldpath, newpath)
	}
	if err != nil {
		return transport.OpError(h.where, "rename", oldpath+" to "+newpath, err)
	}
	return nil
}

// rename uses posix-rename@openssh.com, which replaces newpath. Servers
// without it get a plain SFTP rename, which fails if newpath exists.
func (h *Host) rename(oldpath, newpath string) error {
	if _, ok := h.sftp.HasExtension("posix-rename@openssh.com"); ok {
		return h.sftp.PosixRename(oldpath, newpath)
	}
	return h.sftp.Rename(oldpath, newpath)
}

// Run runs cmd in a new session, through the login shell of the user
// (sh -c on the hosts cyrplan manages). It gives up after the
// CommandTimeout of the Config or when ctx ends, whichever is first: it
// then sends SIGTERM to the command and closes the session.
//
// At most 8 commands run at once on a Host; more wait for their turn.
func (h *Host) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeoutCause(ctx, h.cfg.CommandTimeout,
		fmt.Errorf("command timed out after %v: %w", h.cfg.CommandTimeout, context.DeadlineExceeded))
	defer cancel()
	fail := func(err error) error { return fmt.Errorf("%s: run %q: %w", h.where, cmd, err) }
	select {
	case h.sessions <- struct{}{}:
		defer func() { <-h.sessions }()
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
	s, err := h.client.NewSession()
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	s.Stdout, s.Stderr = stdout, stderr
	if stdin != nil {
		// Copied here, not by the session: a command that exits
		// without reading all of it has sshd close the channel, and
		// the session would report the write that failed (EOF) as the
		// command's error.
		w, err := s.StdinPipe()
		if err != nil {
			return fail(err)
		}
		go func() {
			_, _ = io.Copy(w, stdin) // a failed write: see above
			w.Close()
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		s.Signal(gossh.SIGTERM)
		s.Close()
	})
	err = s.Run(cmd)
	if !stop() {
		return fail(context.Cause(ctx))
	}
	var ee *gossh.ExitError
	if errors.As(err, &ee) {
		return &transport.ExitError{Code: ee.ExitStatus()}
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// Sync does nothing more: each WriteFile is synced (fsync@openssh.com)
// before its rename, and SFTP has no way to sync a directory.
func (h *Host) Sync(context.Context) error { return nil }

// Close closes the SFTP session and the connection.
func (h *Host) Close() error {
	h.closed.Do(func() { close(h.done) })
	h.sftpOnce.Do(func() { h.sftpErr = errors.New("closed") })
	var err error
	if h.sftp != nil {
		err = h.sftp.Close()
	}
	if cerr := h.client.Close(); err == nil {
		err = cerr
	}
	return err
}

// check returns why an operation on p cannot start: ctx has ended, or p
// is not an absolute path (SFTP would take it relative to the home
// directory).
func check(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !path.IsAbs(p) {
		return errors.New("not an absolute path")
	}
	return nil
}

// fail wraps err from operation op on p, keeping what errors.Is needs
// (fs.ErrNotExist, fs.ErrExist) and naming the host; when the
// connection was closed under the operation, it says why instead.
func (h *Host) fail(op, p string, err error) error {
	if why := h.dead.Load(); why != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
		err = *why
	}
	return transport.OpError(h.where, op, p, err)
}
