package render_test

import (
	"bytes"
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/treedir"
)

var update = flag.Bool("update", false, "rewrite golden/ from layout/")

func example(t testing.TB) *layout.Layout {
	t.Helper()
	l, err := layout.Load("../../layout")
	if err != nil {
		t.Fatalf("example layout: %v", err)
	}
	return l
}

// TestGolden keeps golden/ equal to the rendered example layout, so that
// a pull request shows reviewers every file that changes on every host.
func TestGolden(t *testing.T) {
	tree := render.Render(example(t))
	if *update {
		if err := treedir.Write("../../golden", tree); err != nil {
			t.Fatal(err)
		}
	}
	d, err := treedir.Diff("../../golden", tree)
	if err != nil {
		t.Fatal(err)
	}
	if d != "" {
		t.Errorf("golden/ is stale; run: go test ./internal/render -update\n%s", d)
	}
}

func TestDeterministic(t *testing.T) {
	a, b := render.Render(example(t)), render.Render(example(t))
	for _, h := range a.HostNames() {
		fa, fb := a.Hosts[h].Files, b.Hosts[h].Files
		if len(fa) != len(fb) {
			t.Fatalf("%s: %d files, then %d", h, len(fa), len(fb))
		}
		for i := range fa {
			if fa[i].Path != fb[i].Path || !bytes.Equal(fa[i].Content, fb[i].Content) {
				t.Errorf("%s:%s renders differently twice", h, fa[i].Path)
			}
		}
	}
}

func file(t *testing.T, tree *render.Tree, host, path string) render.File {
	t.Helper()
	for _, f := range tree.Hosts[host].Files {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("%s has no file %s", host, path)
	return render.File{}
}

var cmdRE = regexp.MustCompile(`cmd="([^"]*)"`)

// TestCyrusConf checks the rules measured on real Cyrus: every command is
// absolute, from the slot's build, and carries -C with the slot's config.
func TestCyrusConf(t *testing.T) {
	tree := render.Render(example(t))
	tests := []struct {
		name, host, path, prefix string
		want, notWant            []string
	}{
		{"pinned master", "imap6", "/etc/cyrus/slot608/cyrus-master.conf", "/usr/cyrusnew/bin/",
			[]string{`listen="10.0.1.23:143"`, `-r -n slot308"`, `listen="10.0.0.6:14308"`}, []string{"syncserver"}},
		{"pinned replica", "imap3", "/etc/cyrus/slot308/cyrus-replica.conf", "/usr/cyrusnew/bin/",
			[]string{`syncserver   cmd="/usr/cyrusnew/bin/sync_server`, `listen="10.0.0.3:14408"`, `listen="10.0.2.23:143"`}, []string{"DAEMON", "sync_client"}},
		{"default build", "imap4", "/etc/cyrus/slot405/cyrus-master.conf", "/usr/lib/cyrus/bin/",
			[]string{`-r -n slot703"`}, []string{"/usr/cyrusnew"}},
		{"spare slot", "imap3", "/etc/cyrus/slot309/cyrus-master.conf", "/usr/lib/cyrus/bin/",
			[]string{`listen="10.0.0.3:14309"`}, []string{"DAEMON", "syncserver", "imapfloat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := file(t, tree, tt.host, tt.path)
			s := string(f.Content)
			conf := strings.Replace(tt.path, "cyrus-master.conf", "imapd.conf", 1)
			conf = strings.Replace(conf, "cyrus-replica.conf", "imapd.conf", 1)
			cmds := cmdRE.FindAllStringSubmatch(s, -1)
			if len(cmds) < 4 {
				t.Fatalf("only %d cmd= lines:\n%s", len(cmds), s)
			}
			for _, m := range cmds {
				if !strings.HasPrefix(m[1], tt.prefix) || !strings.Contains(m[1], " -C "+conf) {
					t.Errorf("cmd=%q: want %s... with -C %s", m[1], tt.prefix, conf)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("missing %q in:\n%s", w, s)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(s, w) {
					t.Errorf("unexpected %q in:\n%s", w, s)
				}
			}
		})
	}
}

func TestIMAPDConf(t *testing.T) {
	tree := render.Render(example(t))
	f := file(t, tree, "imap6", "/etc/cyrus/slot608/imapd.conf")
	s := string(f.Content)
	for _, w := range []string{
		"servername: slot608\n", "syslog_prefix: slot608\n", "configdirectory: /mnt/meta8/conf\n",
		"partition-default: /mnt/data8/spool\n", "sync_log_channels: slot308\n", "slot308_sync_host: 10.0.0.3\n",
		"slot308_sync_port: 14408\n", "sync_password: " + render.SecretMarker("replication") + "\n",
		"admins: cyrus repluser\n", "quota_db: twoskip\n", "master_bind_errors_fatal: yes\n",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("slot608 imapd.conf lacks %q", w)
		}
	}
	if f.Mode != 0o640 || f.Group != "mail" {
		t.Errorf("imapd.conf mode %v group %s; want 0640 root:mail (it holds a secret)", f.Mode, f.Group)
	}
	if len(f.Secrets) != 1 || f.Secrets[0] != "replication" {
		t.Errorf("Secrets = %v; want [replication]", f.Secrets)
	}
	// The store option applies to its store only.
	if other := file(t, tree, "imap4", "/etc/cyrus/slot405/imapd.conf"); bytes.Contains(other.Content, []byte("quota_db")) {
		t.Error("store23's quota_db leaked into slot405")
	}
	// Every option appears once: Cyrus refuses a duplicate.
	seen := map[string]bool{}
	for _, line := range strings.Split(s, "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			if seen[k] {
				t.Errorf("option %s twice", k)
			}
			seen[k] = true
		}
	}
}

func TestInitScript(t *testing.T) {
	tree := render.Render(example(t))
	tests := []struct {
		name, host, slot string
		want             []string
	}{
		{"preferred master", "imap6", "slot608", []string{"DEFAULT_ROLE='master'\n", "PREFIX='/usr/cyrusnew'\n", "FLOAT_MASTER='10.0.1.23'\n", "FLOAT_REPLICA='10.0.2.23'\n", "IMAP_PORT='14308'\n", "PIDFILE='/run/cyrus-slot608.pid'\n"}},
		{"preferred replica", "imap3", "slot308", []string{"DEFAULT_ROLE='replica'\n", "IMAP_ADDR='10.0.0.3'\n"}},
		{"spare", "imap3", "slot309", []string{"DEFAULT_ROLE='master'\n", "FLOAT_MASTER=''\n", "PREFIX='/usr/lib/cyrus'\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := file(t, tree, tt.host, "/etc/init.d/cyrus-"+tt.slot)
			if f.Mode != 0o755 {
				t.Errorf("mode %v; want 0755", f.Mode)
			}
			for _, w := range tt.want {
				if !bytes.Contains(f.Content, []byte(w)) {
					t.Errorf("init script lacks %q", w)
				}
			}
			if !bytes.HasPrefix(f.Content, []byte("#!/bin/sh\n")) {
				t.Error("no #!/bin/sh line")
			}
		})
	}
}

func TestNoSecretsNoTimestamps(t *testing.T) {
	tree := render.Render(example(t))
	stamp := regexp.MustCompile(`20[0-9]{2}-[0-9]{2}-[0-9]{2}|[0-9a-f]{40}`)
	for _, h := range tree.HostNames() {
		for _, f := range tree.Hosts[h].Files {
			if stamp.Match(f.Content) {
				t.Errorf("%s:%s has a date or a commit id", h, f.Path)
			}
		}
	}
}

// A rendered file holds little more memory than its content: a tree of
// 10,000 slots is rendered whole before anything is written, and a
// buffer grown past its first size would hold twice the file (the init
// scripts once held 10 KB each for their 6 KB).
func TestNoSlack(t *testing.T) {
	for _, h := range render.Render(example(t)).Hosts {
		for _, f := range h.Files {
			if slack := cap(f.Content) - len(f.Content); slack > 1<<10 {
				t.Errorf("%s: %d bytes held for %d of content", f.Path, cap(f.Content), len(f.Content))
			}
		}
	}
}
