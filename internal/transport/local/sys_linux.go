package local

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openBeneath opens rel, a path relative to the directory root, with
// openat2(2): one system call, however deep rel is, that fails (EXDEV)
// where ".." or a symbolic link would leave root, absolute links
// included, as os.Root does component by component. A rename or mount
// racing with it (EAGAIN) is retried. ok is false on a kernel without
// openat2 (before Linux 5.6, or a seccomp filter that hides it): the
// caller then goes through os.Root.
func openBeneath(root int, rel string, flags int) (fd int, ok bool, err error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err = unix.Openat2(root, rel, &how)
		switch {
		case errors.Is(err, unix.ENOSYS):
			return -1, false, nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		}
		return fd, true, err
	}
}

// syncEachFile: syncfs(2) makes the temporary files of WriteFiles
// durable at once.
const syncEachFile = false

// syncFS makes everything written to the filesystem that holds d
// durable, and reports any write-back error since d was opened.
func syncFS(d *os.File) error {
	return eintr(func() error { return unix.Syncfs(int(d.Fd())) })
}
