package ssh

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

	"github.com/cyrplan/cyrplan/internal/transport"
)

// ids maps the user and group names of a host to numeric ids.
type ids struct {
	users, groups map[string]int
}

// lookupOwner returns the uid and gid owner names on the host, -1 for
// an empty name. The host's /etc/passwd and /etc/group are read on first
// use and kept: users from other sources (LDAP) are not known.
func (h *Host) lookupOwner(owner transport.Owner) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner == (transport.Owner{}) {
		return uid, gid, nil
	}
	h.idsMu.Lock()
	defer h.idsMu.Unlock()
	if h.ids == nil {
		users, err := h.readIDs("/etc/passwd")
		if err != nil {
			return 0, 0, err
		}
		groups, err := h.readIDs("/etc/group")
		if err != nil {
			return 0, 0, err
		}
		h.ids = &ids{users: users, groups: groups}
	}
	var ok bool
	if owner.User != "" {
		if uid, ok = h.ids.users[owner.User]; !ok {
			return 0, 0, fmt.Errorf("unknown user %q (not in /etc/passwd)", owner.User)
		}
	}
	if owner.Group != "" {
		if gid, ok = h.ids.groups[owner.Group]; !ok {
			return 0, 0, fmt.Errorf("unknown group %q (not in /etc/group)", owner.Group)
		}
	}
	return uid, gid, nil
}

// readIDs reads the name and id (the first and third field) of each line
// of an /etc/passwd or /etc/group file.
func (h *Host) readIDs(file string) (map[string]int, error) {
	f, err := h.sftp.Open(file)
	if err != nil {
		return nil, transport.OpError("", "read", file, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	m := map[string]int{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if id, err := strconv.Atoi(fields[2]); err == nil {
			m[fields[0]] = id
		}
	}
	return m, sc.Err()
}

// chown sets the owner of p to uid:gid, where -1 keeps the current one.
func (h *Host) chown(p string, uid, gid int) error {
	if uid < 0 && gid < 0 {
		return nil
	}
	if uid < 0 || gid < 0 {
		// SFTP sets both ids at once.
		fi, err := h.sftp.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*sftp.FileStat)
		if !ok {
			return fmt.Errorf("no owner in the attributes of %s", p)
		}
		if uid < 0 {
			uid = int(st.UID)
		}
		if gid < 0 {
			gid = int(st.GID)
		}
	}
	return h.sftp.Chown(p, uid, gid)
}
