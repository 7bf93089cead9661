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

// Entry is what stands at one path, as Inspect found it.
type Entry struct {
	Exists bool
	Info   FileInfo // as Lstat describes it; zero unless Exists
	// Data is the content when Info is a regular file of at most
	// MaxReadSize bytes (CheckReadable), nil for anything else.
	Data []byte
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

// File is one file for WriteFiles: its path, content, mode and owner.
type File struct {
	Path  string
	Data  []byte
	Mode  fs.FileMode
	Owner Owner
}

// WriteFile replaces the one file path on h atomically (WriteFiles).
func WriteFile(ctx context.Context, h Host, path string, data []byte, mode fs.FileMode, owner Owner) error {
	return h.WriteFiles(ctx, []File{{Path: path, Data: data, Mode: mode, Owner: owner}})
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

	// Inspect describes every one of paths as Lstat does, and reads
	// those that are regular files of at most MaxReadSize bytes as
	// ReadFile does (nothing else is opened): what a plan needs to know
	// of the paths cyrplan manages, at the transport's best speed. It
	// returns one Entry per path, in order; a missing path is an Entry
	// that does not exist. A path that changed between its description
	// and its read is described as what was read.
	Inspect(ctx context.Context, paths []string) ([]Entry, error)

	// Stat describes path, following symbolic links. A missing path
	// satisfies fs.ErrNotExist.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// Lstat describes path itself: a symbolic link is reported as one
	// (fs.ModeSymlink in Mode), never followed.
	Lstat(ctx context.Context, path string) (FileInfo, error)

	// ReadDir lists the directory path, sorted by name, each entry as
	// Lstat describes it. A missing directory satisfies fs.ErrNotExist.
	ReadDir(ctx context.Context, path string) ([]DirEntry, error)

	// WriteFiles replaces the path of each file atomically: it writes
	// every file's content to a temporary file in the same directory,
	// with its mode and owner, makes them all durable, and only then
	// renames each over its path (the renames are durable by Sync at the
	// latest). Readers see the old or the new content, never a mix; a
	// crash at any moment leaves at most stray temporary files whose
	// names start with TempPrefix. A failure before the renames changes
	// nothing; one during them leaves the files renamed so far replaced.
	// Parent directories must exist.
	WriteFiles(ctx context.Context, files []File) error

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

	// Sync makes every WriteFiles so far durable (a transport that syncs
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
