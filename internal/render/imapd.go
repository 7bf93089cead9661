package render

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
)

// imapdConf renders a slot's imapd.conf: the options cyrplan owns first,
// in a fixed order, then the layout's options sorted by name (a store's
// options override the layout-wide ones). It returns the secrets it
// references.
func imapdConf(b *bytes.Buffer, l *layout.Layout, s *layout.Slot) []string {
	p := hostpath.Of(s.Name, s.Meta)
	build := l.BuildOf(s.Name)
	what := fmt.Sprintf("imapd.conf of %s (spare slot, Cyrus %s)", s.Name, build.Name)
	if s.Store != "" {
		what = fmt.Sprintf("imapd.conf of %s (store %s, Cyrus %s)", s.Name, s.Store, build.Name)
	}
	header(b, "#", what)
	opt := func(k, v string) { fmt.Fprintf(b, "%s: %s\n", k, v) }

	b.WriteString("\n# paths and identity (set by cyrplan)\n")
	opt("configdirectory", p.ConfigDB)
	opt("defaultpartition", "default")
	opt("partition-default", s.Data+"/spool")
	opt("metapartition-default", s.Meta+"/meta")
	opt("metapartition_files", "header index cache expunge squat annotations lock")
	opt("servername", s.Name)
	opt("syslog_prefix", s.Name)
	opt("master_bind_errors_fatal", "yes")
	opt("lmtpsocket", p.ConfigDB+"/socket/lmtp")
	opt("idlesocket", p.ConfigDB+"/socket/idle")
	opt("notifysocket", p.ConfigDB+"/socket/notify")
	opt("sievedir", s.Meta+"/sieve")
	opt("sasl_sasldb_path", p.SASLDB())

	var secrets []string
	if peers := peers(l, s); len(peers) > 0 {
		b.WriteString("\n# replication (set by cyrplan): as master, this slot's sync_client\n")
		b.WriteString("# sends to the other slots of its store, one channel each\n")
		names := make([]string, len(peers))
		for i, ps := range peers {
			names[i] = ps.Name
		}
		opt("sync_log", "yes")
		opt("sync_log_channels", strings.Join(names, " "))
		opt("sync_try_imap", "no")
		opt("sync_authname", l.Replication.Authname)
		opt("sync_password", SecretMarker(l.Replication.Password))
		secrets = append(secrets, l.Replication.Password)
		for _, ps := range peers {
			opt(ps.Name+"_sync_host", l.Hosts[ps.Host].Address)
			opt(ps.Name+"_sync_port", fmt.Sprint(ps.SyncPort))
		}
	}

	opts := layout.Options{}
	for k, v := range l.Imapd {
		opts[k] = v
	}
	if st := l.Stores[s.Store]; st != nil {
		for k, v := range st.Imapd {
			opts[k] = v
		}
	}
	if s.Store != "" {
		opts["admins"] = withWord(opts["admins"], l.Replication.Authname)
	}
	if len(opts) > 0 {
		b.WriteString("\n# options from the layout\n")
		for _, k := range opts.Keys() {
			opt(k, opts[k])
		}
	}
	return secrets
}

// withWord adds w to the space-separated list if it is not in it.
func withWord(list, w string) string {
	for _, x := range strings.Fields(list) {
		if x == w {
			return list
		}
	}
	return strings.TrimSpace(list + " " + w)
}
