package plan

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
)

func example(t *testing.T) *layout.Layout {
	t.Helper()
	l, err := layout.Load("../../layout")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// applied returns what hosts hold after a clean apply of tree.
func applied(tree *render.Tree) map[string]*state.Host {
	out := map[string]*state.Host{}
	for _, hn := range tree.HostNames() {
		out[hn] = state.FromTree(tree, hn)
		out[hn].Manifest.ApplyID = "a1"
	}
	return out
}

// empty returns hosts that hold nothing yet.
func empty(tree *render.Tree) map[string]*state.Host {
	out := map[string]*state.Host{}
	for _, hn := range tree.HostNames() {
		h := &state.Host{Name: hn, Files: map[string]*state.File{}, Dirs: map[string]*state.Dir{}, Roles: map[string]layout.Role{}, Builds: map[string]state.Build{}}
		for _, f := range tree.Hosts[hn].Files {
			h.Files[f.Path] = &state.File{}
		}
		out[hn] = h
	}
	return out
}

func build(t *testing.T, l *layout.Layout, obs map[string]*state.Host, targets ...string) *Plan {
	t.Helper()
	sc, err := NewScope(l, targets, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Build(Input{Layout: l, Tree: render.Render(l), Observed: obs, Scope: sc})
}

func TestFromEmptyHosts(t *testing.T) {
	l := example(t)
	p := build(t, l, empty(render.Render(l)))
	if got, want := p.Summary.Line(), "Plan: 29 slots to add, 0 to change, 0 to remove; 29 starts, 0 restarts, 0 reloads, 0 stops."; got != want {
		t.Errorf("summary %q; want %q", got, want)
	}
	// Store by store, the replica before the master.
	var order []string
	for _, a := range p.Actions {
		if a.Store == "store23" {
			order = append(order, a.Slot+":"+string(a.Role))
		}
	}
	if strings.Join(order, " ") != "slot308:replica slot608:master" {
		t.Errorf("store23 actions %v; want the replica first", order)
	}
	roles := 0
	for _, h := range p.Hosts {
		roles += len(h.Roles)
	}
	if roles != 29 {
		t.Errorf("%d role writes; want one per new slot", roles)
	}
}

func TestNoChanges(t *testing.T) {
	l := example(t)
	p := build(t, l, applied(render.Render(l)))
	if p.HasChanges() {
		var b bytes.Buffer
		p.WriteText(&b, "plan")
		t.Fatalf("plan of an applied fleet has changes:\n%s", b.String())
	}
	var b bytes.Buffer
	p.WriteText(&b, "plan")
	if !strings.Contains(b.String(), "No changes. The hosts match the layout.") {
		t.Errorf("output:\n%s", b.String())
	}
}

// mutate changes the layout's store23 and returns the plan against a
// fleet that holds the unchanged layout.
func TestStoreOptionChange(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	l.Stores["store23"].Imapd["quota_db"] = "skiplist"
	p := build(t, l, obs)
	var files []string
	for _, h := range p.Hosts {
		for _, f := range h.Files {
			files = append(files, h.Host+":"+f.Path)
			if len(f.Options) != 1 || f.Options[0].Key != "quota_db" || f.Options[0].Before != "twoskip" || f.Options[0].After != "skiplist" {
				t.Errorf("%s options %+v", f.Path, f.Options)
			}
		}
	}
	if got := strings.Join(files, " "); got != "imap3:/etc/cyrus/slot308/imapd.conf imap6:/etc/cyrus/slot608/imapd.conf" {
		t.Errorf("files %s", got)
	}
	var acts []string
	for _, a := range p.Actions {
		acts = append(acts, string(a.Verb)+" "+a.Slot)
	}
	if got := strings.Join(acts, ", "); got != "reload slot308, reload slot608" {
		t.Errorf("actions %s", got)
	}
	var b bytes.Buffer
	p.WriteText(&b, "plan")
	for _, w := range []string{"~ quota_db: twoskip => skiplist", "-quota_db: twoskip", "+quota_db: skiplist",
		"Plan: 0 slots to add, 2 to change, 0 to remove; 0 starts, 0 restarts, 2 reloads, 0 stops."} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, b.String())
		}
	}
}

func TestActions(t *testing.T) {
	tests := []struct {
		name   string
		change func(l *layout.Layout)
		want   string // verbs of store23's slots
	}{
		{"pin to another build restarts", func(l *layout.Layout) {
			l.Builds["other"] = &layout.Build{Name: "other", Prefix: "/opt/cyrus", Version: "3.6.1"}
			l.Stores["store23"].Build = "other"
		}, "restart slot308, restart slot608"},
		{"listen port restarts", func(l *layout.Layout) { l.Slots["slot608"].IMAPPort = 15000 }, "restart slot608"},
		{"replica address changes both slots' configs", func(l *layout.Layout) { l.Stores["store23"].IP.Replica = "10.0.2.99" }, "restart slot308, restart slot608"},
		{"layout-wide option reloads every slot", func(l *layout.Layout) { l.Imapd["allowplaintext"] = "yes" }, "reload slot308, reload slot608"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := example(t)
			obs := applied(render.Render(l))
			tt.change(l)
			p := build(t, l, obs)
			var acts []string
			for _, a := range p.Actions {
				if a.Store == "store23" {
					acts = append(acts, string(a.Verb)+" "+a.Slot)
				}
			}
			if got := strings.Join(acts, ", "); got != tt.want {
				t.Errorf("store23 actions %q; want %q", got, tt.want)
			}
		})
	}
}

// A change to the cyrus.conf of the role a slot does not run in needs no
// action: it is read at the next role change.
func TestOtherRoleConf(t *testing.T) {
	l := example(t)
	tree := render.Render(l)
	obs := applied(tree)
	obs["imap6"].Files["/etc/cyrus/slot608/cyrus-replica.conf"].SHA256 = "changed"
	obs["imap6"].Files["/etc/cyrus/slot608/cyrus-replica.conf"].Content = []byte("changed\n")
	p := build(t, l, obs)
	if len(p.Actions) != 0 || p.Summary.Files != 1 || p.Summary.Drift != 1 {
		t.Errorf("actions %d, files %d, drift %d; want 0, 1, 1", len(p.Actions), p.Summary.Files, p.Summary.Drift)
	}
	// As replica, the same file is the one it runs with.
	obs["imap6"].Roles["slot608"] = layout.Replica
	p = build(t, l, obs)
	// The hand-edited file lost its listen lines: a restart.
	if len(p.Actions) != 1 || p.Actions[0].Verb != Restart || p.Actions[0].Role != layout.Replica {
		t.Errorf("actions %+v; want a restart of slot608 as replica", *p.Actions[0])
	}
}

func TestDriftAndRemoval(t *testing.T) {
	l := example(t)
	tree := render.Render(l)
	obs := applied(tree)
	h := obs["imap6"]
	// A hand edit since the last apply.
	f := h.Files["/etc/cyrus/slot608/imapd.conf"]
	f.Content = append(append([]byte(nil), f.Content...), "admins: mallory\n"...)
	f.SHA256 = state.Hash(f.Content)
	// A slot cyrplan managed that the layout no longer has.
	h.Manifest.Files["/etc/cyrus/slot699/imapd.conf"] = state.ManifestFile{SHA256: "x", Slot: "slot699", Kind: "imapd.conf"}
	h.Manifest.Slots = append(h.Manifest.Slots, "slot699")
	h.Files["/etc/cyrus/slot699/imapd.conf"] = &state.File{Exists: true, SHA256: "x"}
	p := build(t, l, obs)
	var b bytes.Buffer
	p.WriteText(&b, "plan")
	out := b.String()
	for _, w := range []string{
		"~ /etc/cyrus/slot608/imapd.conf [drift: changed on the host]",
		"-admins: mallory",
		"- /etc/cyrus/slot699/imapd.conf",
		"stop    slot699 on imap6",
		"Drift: 1 file changed on the hosts since cyrplan last wrote it",
		"imap6:/etc/cyrus/slot608/imapd.conf",
		"Plan: 0 slots to add, 1 to change, 1 to remove; 0 starts, 0 restarts, 1 reload, 1 stop.",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if p.Actions[0].Verb != Stop {
		t.Errorf("first action %s; stops go first", p.Actions[0].Verb)
	}
	// Targeting a store leaves another slot's removal alone.
	p = build(t, l, obs, "store23")
	for _, a := range p.Actions {
		if a.Slot == "slot699" {
			t.Error("--target store23 stops slot699")
		}
	}
}

func TestMissingBuild(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	obs["imap3"].Builds["/usr/cyrusnew"] = state.BuildMissing
	p := build(t, l, obs)
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "imap3: Cyrus build 3.6.1-fm1 is not installed: /usr/cyrusnew/bin/master is missing (needed by slot308)") {
		t.Errorf("problems %q", p.Problems)
	}
}

func TestScope(t *testing.T) {
	l := example(t)
	tests := []struct {
		targets, excludes []string
		hosts             string
		err               string
	}{
		{[]string{"store23"}, nil, "imap3 imap6", ""},
		{[]string{"imap6"}, nil, "imap6", ""},
		{[]string{"slot608", "slot405"}, nil, "imap4 imap6", ""},
		{nil, []string{"imap3", "imap4", "imap5", "imap7", "imap8", "imap9"}, "imap6", ""},
		{[]string{"store23"}, []string{"slot308"}, "imap6", ""},
		{[]string{"store99"}, nil, "", `--target store99: no store, slot or host is called "store99"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.targets, tt.excludes...), ","), func(t *testing.T) {
			sc, err := NewScope(l, tt.targets, tt.excludes)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("err %v; want %s", err, tt.err)
				}
				return
			}
			var hosts []string
			for _, h := range l.HostNames() {
				if sc.Host(h) {
					hosts = append(hosts, h)
				}
			}
			if got := strings.Join(hosts, " "); got != tt.hosts {
				t.Errorf("hosts %q; want %q", got, tt.hosts)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	l := example(t)
	tree := render.Render(l)
	obs := applied(tree)
	l.Imapd["allowplaintext"] = "yes"
	saved := build(t, l, obs)
	if why := Compare(saved, build(t, l, obs)); len(why) != 0 {
		t.Errorf("fresh plan stale: %v", why)
	}
	f := obs["imap6"].Files["/etc/cyrus/slot608/imapd.conf"]
	f.SHA256 = "edited"
	why := Compare(saved, build(t, l, obs))
	if len(why) != 1 || why[0] != "imap6:/etc/cyrus/slot608/imapd.conf changed on the host since the plan was made" {
		t.Errorf("stale: %v", why)
	}
	// A commit whose layout files are the same (a merge elsewhere in the
	// repository) is the same layout; other files are not.
	other := build(t, l, applied(tree))
	other.Commit = "abc"
	if why := Compare(saved, other); len(why) != 0 {
		t.Errorf("another commit of the same layout: %v", why)
	}
	other.LayoutHash = "other"
	if why := Compare(saved, other); len(why) == 0 || !strings.Contains(why[0], "layout commit") {
		t.Errorf("another layout not stale: %v", why)
	}
}

// TestCompareBinds: a saved plan holds only while a plan made now would
// do exactly the same, host by host and item by item.
func TestCompareBinds(t *testing.T) {
	l := example(t)
	tree := render.Render(l)
	l.Imapd["allowplaintext"] = "yes"
	tests := []struct {
		name  string
		saved func() *Plan
		fresh func() *Plan
		want  string
	}{
		{"a host unread at plan time", func() *Plan {
			obs := applied(tree)
			delete(obs, "imap7")
			return build(t, l, obs)
		}, func() *Plan { return build(t, l, applied(tree)) },
			"imap7: could not be read when the plan was made, so the plan does nothing there; make a new plan to change it"},
		{"targets edited out of the file", func() *Plan {
			p := build(t, l, applied(tree), "store23")
			p.Targets = []string{}
			return p
		}, func() *Plan { return build(t, l, applied(tree)) },
			"imap4: in this apply's scope, not in the plan's"},
		{"a failover since", func() *Plan { return build(t, l, applied(tree)) }, func() *Plan {
			obs := applied(tree)
			obs["imap6"].Roles["slot608"] = layout.Replica
			obs["imap3"].Roles["slot308"] = layout.Master
			return build(t, l, obs)
		}, "imap3: slot308 now runs as master, as replica when the plan was made (a failover ran since)"},
		{"an action edited in the file", func() *Plan {
			p := build(t, l, applied(tree))
			p.Actions[0].Verb = Restart
			return p
		}, func() *Plan { return build(t, l, applied(tree)) },
			"action 1 is now reload slot401 on imap4 as replica, the plan has restart slot401 on imap4 as replica"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := Compare(tt.saved(), tt.fresh())
			if !slices.Contains(why, tt.want) {
				t.Errorf("Compare:\n  %s\nwant among them:\n  %s", strings.Join(why, "\n  "), tt.want)
			}
		})
	}
}

// TestSecretChange: a secret whose value differs from the fingerprint
// the manifest records rewrites the files that hold it and reloads their
// slots, and the plan says so without the value.
func TestSecretChange(t *testing.T) {
	l := example(t)
	tree := render.Render(l)
	obs := applied(tree)
	sc, _ := NewScope(l, nil, nil)
	values := secret.Values{"replication": "s3cret"}
	same := Build(Input{Layout: l, Tree: tree, Observed: obs, Scope: sc, Secrets: values})
	if same.HasChanges() {
		t.Fatalf("the same secret: the plan has changes")
	}
	// Observed with a new value, the hosts' files hold a stale one.
	for _, h := range obs {
		for _, f := range tree.Hosts[h.Name].Files {
			h.Files[f.Path].Stale = f.Secrets
		}
	}
	if p := Build(Input{Layout: l, Tree: tree, Observed: obs, Scope: sc}); p.HasChanges() {
		t.Fatalf("without secrets the plan compares none, but has changes")
	}
	p := Build(Input{Layout: l, Tree: tree, Observed: obs, Scope: sc, Secrets: values})
	var reloads int
	for _, a := range p.Actions {
		if a.Verb != Reload || a.Reason != "secret replication changed" {
			t.Errorf("action %+v; want a reload for the secret", *a)
		}
		reloads++
	}
	var b bytes.Buffer
	p.WriteText(&b, "plan")
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if reloads == 0 || !strings.Contains(out, "~ /etc/cyrus/slot608/imapd.conf (secret replication changed)") {
		t.Errorf("%d reloads; output:\n%s", reloads, out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("the plan shows the secret")
	}
}

// TestRemovedSlotLeavesManifest: a slot that left the layout leaves the
// manifest even when an interrupted apply already removed its files, and
// is stopped by its pidfile when its init script is gone.
func TestRemovedSlotLeavesManifest(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	h := obs["imap6"]
	h.Manifest.Files["/etc/cyrus/slot699/imapd.conf"] = state.ManifestFile{SHA256: "x", Slot: "slot699", Kind: "imapd.conf"}
	h.Manifest.Files["/etc/init.d/cyrus-slot699"] = state.ManifestFile{SHA256: "y", Slot: "slot699", Kind: "init"}
	h.Manifest.Slots = append(h.Manifest.Slots, "slot699")
	p := build(t, l, obs)
	hp := p.Hosts[slices.IndexFunc(p.Hosts, func(h *Host) bool { return h.Host == "imap6" })]
	if !hp.NeedsWork || len(hp.Files) != 0 {
		t.Errorf("needs work %v, files %d; want work (the manifest) and no file", hp.NeedsWork, len(hp.Files))
	}
	if _, ok := hp.Manifest.Files["/etc/cyrus/slot699/imapd.conf"]; ok || slices.Contains(hp.Manifest.Slots, "slot699") {
		t.Errorf("the planned manifest keeps slot699: %v", hp.Manifest.Slots)
	}
	if len(p.Actions) != 1 || p.Actions[0].Verb != Stop || !p.Actions[0].ByPIDFile {
		t.Errorf("actions %+v; want a stop of slot699 by its pidfile", p.Actions)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	l := example(t)
	p := build(t, l, empty(render.Render(l)))
	var b bytes.Buffer
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("servername")) {
		t.Error("the plan file holds file contents; it should hold hashes")
	}
	q, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if why := Compare(q, p); len(why) != 0 {
		t.Errorf("round trip stale: %v", why)
	}
	if _, err := Read(strings.NewReader(`{"format": 99}`)); err == nil || !strings.Contains(err.Error(), "format 99") {
		t.Errorf("format 99: %v", err)
	}
}

// TestPending: an action an earlier apply wrote files for but did not
// run is planned again, even though the files match; a stronger action
// the layout asks for wins.
func TestPending(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	obs["imap6"].Manifest.Pending = map[string]string{"slot608": "reload", "slot602": "start"}
	p := build(t, l, obs)
	var acts []string
	for _, a := range p.Actions {
		acts = append(acts, string(a.Verb)+" "+a.Slot+": "+a.Reason)
	}
	if got, want := strings.Join(acts, "; "), "start slot602: left pending by apply a1; reload slot608: left pending by apply a1"; got != want {
		t.Errorf("actions %q; want %q", got, want)
	}
	if !p.HasChanges() {
		t.Error("a plan with pending actions has no changes")
	}

	l.Stores["store23"].Build = "3.6.1"
	p = build(t, l, obs, "slot608")
	if len(p.Actions) != 1 || p.Actions[0].Verb != Restart {
		t.Errorf("pending reload and a new build: %+v; want one restart", p.Actions)
	}
}

// TestSplitBrain: a store two of whose slots record master (a host back
// after a forced failover) is a problem: apply would run two masters.
func TestSplitBrain(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	obs["imap3"].Roles["slot308"] = layout.Master
	obs["imap6"].Roles["slot608"] = layout.Master
	p := build(t, l, obs)
	want := "store23: slot608 on imap6 and slot308 on imap3 all record themselves as master; apply will not run two masters: settle it with cyrplan failover store23 --to SLOT"
	if !slices.Contains(p.Problems, want) {
		t.Errorf("problems %q; want %q", p.Problems, want)
	}
}
