// Package transport defines how cyrplan reaches a host: read and write
// files, take a lock, and run commands. Implementations live in the
// local (a directory per host) and ssh (OpenSSH-compatible SSH+SFTP)
// subpackages; both pass the conformance suite in transporttest.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
)

// TempPrefix starts the name of every temporary file WriteFile creates
// (the new content of a file before it is renamed over the old one).
const TempPrefix = ".cyrplan-tmp-"

// MaxReadSize bounds what ReadFile reads: every file cyrplan reads from
// a host (a config it wrote, its manifest, a lock, a role) is far smaller.
const MaxReadSize = 32 << 20

// ErrNotRegular is returned by ReadFile for anything but a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned by ReadFile for a file over MaxReadSize.
var ErrTooLarge = fmt.Errorf("larger than %d bytes", MaxReadSize)

// Kind names what stands at a path for messages: "a symbolic link", "a
// named pipe", "a directory".
func Kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	case mode.IsDir():
		return "a directory"
	case mode.IsRegular():
		return "a regular file"
	}
	return "a special file"
}

// CheckReadable says why what Lstat described cannot be read as a file
// cyrplan wrote, nil if it can.
func CheckReadable(fi FileInfo) error {
	if !fi.Mode.IsRegular() {
		return fmt.Errorf("%w: it is %s", ErrNotRegular, Kind(fi.Mode))
	}
	if fi.Size > MaxReadSize {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, fi.Size)
	}
	return nil
}

// ErrNoExec is returned by Run on transports that cannot run commands
// (the local directory transport). Callers report the command instead.
var ErrNoExec = errors.New("this transport does not run commands")

// FileInfo is what Stat reports about a path on a host.
type FileInfo struct {
	Mode  fs.FileMode // permission bits and type (fs.ModeDir for directories)
	Size  int64
	IsDir bool
}

// DirEntry is one entry of a directory.
type DirEntry struct {
	Name string
	Info FileInfo
}

// Owner names a user and group on a host ("cyrus", "mail"). The empty
// Owner leaves ownership as the transport creates it.
type Owner struct {
	User  string
	Group string
}

// ExitError is returned by Run when the command ran and exited non-zero.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// Host is one machine. All paths are absolute paths on that host.
// A Host is safe for concurrent use by several goroutines.
type Host interface {
	// Name is the host's name in the layout (imap6).
	Name() string

	// ReadFile returns the content of a regular file of at most
	// MaxReadSize bytes. A missing file gives an error that satisfies
	// errors.Is(err, fs.ErrNotExist); anything else at path (a symbolic
	// link, a FIFO, a device) is never opened and gives ErrNotRegular.
	ReadFile(ctx context.Context, path string) ([]byte, error)

	// Stat describes path, following symbolic links. A missing path
	// satisfies fs.ErrNotExist.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// Lstat describes path itself: a symbolic link is reported as one
	// (fs.ModeSymlink in Mode), never followed.
	Lstat(ctx context.Context, path string) (FileInfo, error)

	// ReadDir lists the directory path, sorted by name, each entry as
	// Lstat describes it. A missing directory satisfies fs.ErrNotExist.
	ReadDir(ctx context.Context, path string) ([]DirEntry, error)

	// WriteFile replaces path atomically: it writes a temporary file in
	// the same directory, syncs it, sets mode and owner, and renames it
	// over path (durable by Sync at the latest). Readers see the old or
	// the new content, never a mix;
	// a crash at any moment leaves at most a stray temporary file whose
	// name starts with TempPrefix. Parent directories must exist.
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode, owner Owner) error

	// CreateExclusive creates path with data only if it does not exist
	// (O_CREATE|O_EXCL); if it exists the error satisfies fs.ErrExist.
	// It is the primitive behind host locks.
	CreateExclusive(ctx context.Context, path string, data []byte, mode fs.FileMode) error

	// MkdirAll creates path and missing parents. The mode and owner are
	// applied to path itself (also when it exists already); parents are
	// created 0755 with the transport's default owner.
	MkdirAll(ctx context.Context, path string, mode fs.FileMode, owner Owner) error

	// Remove deletes a file or an empty directory. Removing a missing
	// path is not an error.
	Remove(ctx context.Context, path string) error

	// Rename moves oldpath to newpath, replacing newpath atomically.
	Rename(ctx context.Context, oldpath, newpath string) error

	// Run runs cmd with /bin/sh -c on the host, with stdin (may be nil)
	// and the given writers (may be nil). A non-zero exit gives
	// *ExitError; transports that cannot run commands give ErrNoExec.
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error

	// Sync makes every WriteFile so far durable (a transport that syncs
	// each write has nothing left to do).
	Sync(ctx context.Context) error

	// Close releases the connection. The Host is unusable afterwards.
	Close() error
}

// OpError is the error of operation op (read, stat, ...) on path p of the
// host described by where ("imap6 (10.0.0.6:22)"; "" when the caller
// names the host). It keeps what errors.Is needs (fs.ErrNotExist,
// fs.ErrExist) and drops the *fs.PathError around err: the path it holds
// is the transport's own (relative to a host directory, say), and the
// message names p instead.
func OpError(where, op, p string, err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err
	}
	if where == "" {
		return fmt.Errorf("%s %s: %w", op, p, err)
	}
	return fmt.Errorf("%s: %s %s: %w", where, op, p, err)
}
