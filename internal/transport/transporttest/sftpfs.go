package transporttest

import (
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/pkg/sftp"
)

// fsHandler serves an os.Root over SFTP, the root being "/". os.Root
// refuses every path that leaves it, by ".." or by a symbolic link.
//
// It implements what the ssh transport uses and refuses the rest:
// reading, writing and creating files, Setstat of mode and owner (the
// owner only when running as root, else it is left alone), Rename,
// PosixRename, Mkdir, Rmdir, Remove, Stat, Lstat and directory listing.
type fsHandler struct {
	root *os.Root
	gate func() // called before every request: a stalled server blocks there
}

// rel turns the cleaned absolute path of a request into a path in root.
func rel(p string) string {
	if r := strings.TrimLeft(p, "/"); r != "" {
		return r
	}
	return "."
}

// Fileread opens a file for reading.
func (h *fsHandler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	h.gate()
	return h.root.Open(rel(r.Filepath))
}

// Filewrite opens a file for writing.
func (h *fsHandler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	h.gate()
	return h.openFile(r)
}

// OpenFile opens a file for reading and writing.
func (h *fsHandler) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	h.gate()
	return h.openFile(r)
}

func (h *fsHandler) openFile(r *sftp.Request) (*os.File, error) {
	pf := r.Pflags()
	if pf.Append {
		return nil, sftp.ErrSSHFxOpUnsupported // WriteAt and O_APPEND do not mix
	}
	flags := os.O_WRONLY
	if pf.Read {
		flags = os.O_RDWR
	}
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	perm := fs.FileMode(0o666) // less the umask, as OpenSSH does
	if r.AttrFlags().Permissions {
		perm = r.Attributes().FileMode().Perm()
	}
	return h.root.OpenFile(rel(r.Filepath), flags, perm)
}

// Filecmd carries out the commands that change the tree.
func (h *fsHandler) Filecmd(r *sftp.Request) error {
	h.gate()
	p := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		return h.setstat(r)
	case "Rename":
		// SFTP v3 rename does not replace the target.
		if _, err := h.root.Lstat(rel(r.Target)); err == nil {
			return &fs.PathError{Op: "rename", Path: r.Target, Err: fs.ErrExist}
		}
		return h.root.Rename(p, rel(r.Target))
	case "Mkdir":
		perm := fs.FileMode(0o777) // less the umask, as OpenSSH does
		if r.AttrFlags().Permissions {
			perm = r.Attributes().FileMode().Perm()
		}
		return h.root.Mkdir(p, perm)
	case "Rmdir", "Remove":
		return h.root.Remove(p)
	}
	return sftp.ErrSSHFxOpUnsupported
}

// setstat sets the mode and the owner; other attributes are refused.
func (h *fsHandler) setstat(r *sftp.Request) error {
	p := rel(r.Filepath)
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size || flags.Acmodtime {
		return sftp.ErrSSHFxOpUnsupported
	}
	if flags.UidGid && os.Geteuid() == 0 {
		if err := h.root.Chown(p, int(attrs.UID), int(attrs.GID)); err != nil {
			return err
		}
	}
	if flags.Permissions {
		return h.root.Chmod(p, attrs.FileMode())
	}
	return nil
}

// PosixRename renames, replacing the target.
func (h *fsHandler) PosixRename(r *sftp.Request) error {
	h.gate()
	return h.root.Rename(rel(r.Filepath), rel(r.Target))
}

// Filelist lists a directory or stats a path.
func (h *fsHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	h.gate()
	p := rel(r.Filepath)
	switch r.Method {
	case "Stat":
		fi, err := h.root.Stat(p)
		if err != nil {
			return nil, err
		}
		return lister{fi}, nil
	case "List":
		d, err := h.root.Open(p)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		entries, err := d.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		var l lister
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			l = append(l, fi)
		}
		return l, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat stats a path without following a final symbolic link.
func (h *fsHandler) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	h.gate()
	fi, err := h.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return lister{fi}, nil
}

// lister is a fixed list of files.
type lister []fs.FileInfo

// ListAt copies the entries from offset on into ls.
func (l lister) ListAt(ls []fs.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[offset:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}
