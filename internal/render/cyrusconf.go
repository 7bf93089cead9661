package render

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
)

// FloatingPort is the port a store's floating addresses serve IMAP on.
const FloatingPort = 143

// cyrusConf renders the cyrus.conf a slot's master process runs with in
// role. Every command is absolute (a pinned build's children must come
// from its own prefix) and carries -C (master does not pass its own on).
// Service names are alphanumeric, as master requires.
func cyrusConf(b *bytes.Buffer, l *layout.Layout, s *layout.Slot, role layout.Role) {
	p := hostpath.Of(s.Name, s.Meta)
	build := l.BuildOf(s.Name)
	st := l.Stores[s.Store]
	bin := func(tool string, args ...string) string {
		return strings.Join(append([]string{build.Prefix + "/bin/" + tool, "-C", p.IMAPDConf}, args...), " ")
	}
	what := fmt.Sprintf("cyrus.conf of %s as a spare slot (Cyrus %s, %s)", s.Name, build.Name, build.Prefix)
	if st != nil {
		what = fmt.Sprintf("cyrus.conf of %s as %s of store %s (Cyrus %s, %s)", s.Name, role, st.Name, build.Name, build.Prefix)
	}
	header(b, "#", what)
	entry := func(name, cmd, rest string) {
		fmt.Fprintf(b, "  %-12s cmd=%q%s\n", name, cmd, rest)
	}
	addr := l.Hosts[s.Host].Address

	b.WriteString("\nSTART {\n")
	entry("recover", bin("ctl_cyrusdb", "-r"), "")
	b.WriteString("}\n\nSERVICES {\n")
	entry("imap", bin("imapd"), fmt.Sprintf(" listen=%q prefork=0", hostPort(addr, s.IMAPPort)))
	if st != nil {
		if float := floatingAddr(st, role); float != "" {
			entry("imapfloat", bin("imapd"), fmt.Sprintf(" listen=%q prefork=0", hostPort(float, FloatingPort)))
		}
	}
	entry("lmtpunix", bin("lmtpd"), fmt.Sprintf(" listen=%q prefork=0", p.ConfigDB+"/socket/lmtp"))
	if st != nil && role == layout.Replica {
		entry("syncserver", bin("sync_server"), fmt.Sprintf(" listen=%q prefork=0", hostPort(addr, s.SyncPort)))
	}
	b.WriteString("}\n\nEVENTS {\n")
	entry("checkpoint", bin("ctl_cyrusdb", "-c"), " period=30")
	entry("delprune", bin("cyr_expire", "-E", "3"), " at=0400")
	b.WriteString("}\n")
	if st != nil && role == layout.Master {
		b.WriteString("\nDAEMON {\n")
		for _, ps := range peers(l, s) {
			entry("sync"+ps.Name, bin("sync_client", "-r", "-n", ps.Name), "")
		}
		b.WriteString("}\n")
	}
}

// floatingAddr is the floating address a slot of st binds in role: the
// master address as master, the replica address as replica.
func floatingAddr(st *layout.Store, role layout.Role) string {
	if role == layout.Master {
		return st.IP.Master
	}
	return st.IP.Replica
}

func hostPort(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}
