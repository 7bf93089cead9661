package layout

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/cyrplan/cyrplan/internal/hostpath"
)

// The checks of the layout's string values. Every value that reaches a
// host (a path, an address, a device, a user) ends up in a config file,
// an init script or a command line, so each is held to a strict pattern
// rather than cleaned of what is known to be dangerous.

// controlChar returns the first control character in s.
func controlChar(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) {
			return r, true
		}
	}
	return 0, false
}

// controlMsg says that s holds a control character, or is "".
func controlMsg(s string) string {
	if r, ok := controlChar(s); ok {
		return fmt.Sprintf("%q contains the control character %s; remove it", s, strconv.QuoteRune(r))
	}
	return ""
}

// pathRE is what a path on a host may hold: init scripts, cyrus.conf
// command lines and imapd.conf take these characters as they are.
var pathRE = regexp.MustCompile(`^[A-Za-z0-9/._+-]+$`)

// systemDirs are the directories of the system itself. A slot's mount
// points get cyrus-owned directories created in them, and a build's
// prefix its own lib directory in LD_LIBRARY_PATH: none may be one of
// these (a directory below one, like /usr/cyrusnew, is fine).
var systemDirs = []string{
	"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
	"/lost+found", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv",
	"/sys", "/tmp", "/usr", "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32",
	"/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin", "/usr/local/lib",
	"/usr/local/sbin", "/usr/local/share", "/usr/sbin", "/usr/share", "/usr/src", "/var",
	"/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log",
	"/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
}

// reservedDirs hold no slot or build, at any depth: the kernel's, and
// those cyrplan writes itself.
var reservedDirs = append([]string{"/proc", "/sys", "/dev", "/etc/systemd"}, hostpath.Written...)

// checkPath returns why p cannot be a directory on a host, or "".
func checkPath(p string) string {
	if msg := controlMsg(p); msg != "" {
		return msg
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q is not an absolute path", p)
	case !pathRE.MatchString(p):
		return fmt.Sprintf("%q: a path may hold only letters, digits and / . _ - + (no spaces, quotes or shell characters)", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Sprintf("%q: paths may not contain ..", p)
	case path.Clean(p) != p:
		return fmt.Sprintf("%q is not a clean path: write %q", p, path.Clean(p))
	case slices.Contains(systemDirs, p):
		return fmt.Sprintf("%q is a system directory: use a directory of its own (one below it is fine)", p)
	}
	for _, d := range reservedDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return fmt.Sprintf("%q is in %s, which is not for slots or builds", p, d)
		}
	}
	return ""
}

// checkAddress returns why s is not an IP address cyrplan can use, or "".
func checkAddress(s string) string {
	if msg := controlMsg(s); msg != "" {
		return msg
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not an IP address", s)
	case a.Zone() != "":
		return fmt.Sprintf("%q has an IPv6 zone (%%%s): write the address without it (the device is the host's interface)", s, a.Zone())
	}
	return ""
}

var (
	// interfaceRE is a Linux network device name (IFNAMSIZ is 16 with
	// the NUL), held to lower case as cyrplan's names are.
	interfaceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,14}$`)
	// userRE is a login name as Debian's adduser accepts it.
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9._-]{0,31}$`)
)

// printable is s for a message: quoted if it holds anything a terminal
// would not show as itself.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
