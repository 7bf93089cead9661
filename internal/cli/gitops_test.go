package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// layoutRepo is a git repository, built with go-git, whose folder
// "fleet" holds a copy of the example layout.
type layoutRepo struct {
	t      *testing.T
	root   string
	layout string
	git    *git.Repository
}

func newLayoutRepo(t *testing.T) *layoutRepo {
	t.Helper()
	root := t.TempDir()
	g, err := git.PlainInitWithOptions(root, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	r := &layoutRepo{t: t, root: root, layout: filepath.Join(root, "fleet"), git: g}
	files, err := filepath.Glob("../../layout/*.cue")
	if err != nil || len(files) == 0 {
		t.Fatalf("example layout: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r.write("fleet/"+filepath.Base(f), string(data))
	}
	r.write("README.md", "the fleet\n")
	r.commit("the example fleet")
	return r
}

func (r *layoutRepo) write(name, content string) {
	r.t.Helper()
	p := filepath.Join(r.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// edit replaces old by new in a file of the repository.
func (r *layoutRepo) edit(name, old, new string) {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(name)))
	if err != nil {
		r.t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		r.t.Fatalf("%s does not contain %q", name, old)
	}
	r.write(name, strings.Replace(string(data), old, new, 1))
}

func (r *layoutRepo) commit(msg string) string {
	r.t.Helper()
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	h, err := wt.Commit(msg, &git.CommitOptions{All: true, Author: sig, Committer: sig})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func (r *layoutRepo) checkout(branch string, create bool) {
	r.t.Helper()
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}); err != nil {
		r.t.Fatal(err)
	}
}

// cyrplan runs the command in-process with --layout set to the repo's
// layout folder.
func (r *layoutRepo) cyrplan(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	var out, errb bytes.Buffer
	code = runChecked(context.Background(), append(args, "--layout", r.layout), &out, &errb)
	return out.String(), errb.String(), code
}

// changedFiles lists the "~ path", "+ path" and "- path" lines of a plan
// or diff in text form.
func changedFiles(out string) []string {
	var files []string
	for _, m := range regexp.MustCompile(`(?m)^ +([~+-]) (/\S+)`).FindAllStringSubmatch(out, -1) {
		files = append(files, m[1]+" "+m[2])
	}
	sort.Strings(files)
	return files
}

func TestDiffBranch(t *testing.T) {
	r := newLayoutRepo(t)
	r.checkout("quota", true)
	r.edit("fleet/stores.cue", `imapd: quota_db: "twoskip"`, `imapd: quota_db: "skiplist"`)
	r.commit("store23: quota_db skiplist")

	out, errOut, code := r.cyrplan("diff", "--base", "main", "--head", "quota")
	if code != 0 {
		t.Fatalf("diff: exit %d\n%s%s", code, out, errOut)
	}
	want := []string{"~ /etc/cyrus/slot308/imapd.conf", "~ /etc/cyrus/slot608/imapd.conf"}
	if got := changedFiles(out); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff changes %q; want exactly store23's slots' imapd.conf %q\n%s", got, want, out)
	}
	for _, s := range []string{"~ quota_db: twoskip => skiplist", "imap6", "imap3", "slot608", "slot308"} {
		if !strings.Contains(out, s) {
			t.Errorf("diff lacks %q:\n%s", s, out)
		}
	}

	// The working tree is the default head; revisions may be relative.
	out2, _, code := r.cyrplan("diff", "--base", "HEAD~1")
	if code != 0 || strings.Join(changedFiles(out2), "\n") != strings.Join(want, "\n") {
		t.Errorf("diff --base HEAD~1 against the working tree: exit %d\n%s", code, out2)
	}
	// Nothing changes between a revision and itself.
	out3, _, code := r.cyrplan("diff", "--base", "quota", "--head", "HEAD")
	if code != 0 || len(changedFiles(out3)) != 0 || !strings.Contains(out3, "No changes.") {
		t.Errorf("diff of a revision with itself: exit %d\n%s", code, out3)
	}
}

func TestDiffMarkdown(t *testing.T) {
	r := newLayoutRepo(t)
	r.edit("fleet/stores.cue", `imapd: quota_db: "twoskip"`, `imapd: quota_db: "skiplist"`)
	r.commit("store23: quota_db skiplist")
	out, errOut, code := r.cyrplan("diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown")
	if code != 0 {
		t.Fatalf("diff --format markdown: exit %d\n%s%s", code, out, errOut)
	}
	for _, s := range []string{"<!-- cyrplan:diff -->\n", "| imap6 | slot608 | ~ imapd.conf | reload |", "<details>", "`quota_db`: `twoskip` → `skiplist`"} {
		if !strings.Contains(out, s) {
			t.Errorf("markdown lacks %q:\n%s", s, out)
		}
	}
	if !strings.HasPrefix(out, "<!-- cyrplan:diff -->") {
		t.Errorf("markdown does not start with its marker:\n%s", out)
	}
}

func TestDiffInvalidRevision(t *testing.T) {
	r := newLayoutRepo(t)
	r.edit("fleet/stores.cue", `replicas: ["slot308"]`, `replicas: ["slot609"]`)
	bad := r.commit("store23: a replica on the master's host")

	_, errOut, code := r.cyrplan("diff", "--base", "HEAD~1", "--head", "HEAD")
	if code != 1 {
		t.Fatalf("diff to an invalid revision: exit %d\n%s", code, errOut)
	}
	for _, s := range []string{"the layout at HEAD (" + bad[:12] + ") is invalid", "stores.cue", "slot609"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("error lacks %q:\n%s", s, errOut)
		}
	}
	if _, errOut, code := r.cyrplan("diff", "--base", "no-such-branch"); code != 1 || !strings.Contains(errOut, "no-such-branch") {
		t.Errorf("diff --base no-such-branch: exit %d\n%s", code, errOut)
	}
}

func TestApplyRefusesAnotherCommit(t *testing.T) {
	t.Setenv("CYRPLAN_SECRET_REPLICATION", "not-a-real-password")
	r := newLayoutRepo(t)
	root := t.TempDir()
	planFile := filepath.Join(t.TempDir(), "fleet.plan")
	if out, errOut, code := r.cyrplan("plan", "--root", root, "--out", planFile); code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}

	// A commit outside the layout folder leaves the plan good ...
	r.write("README.md", "the fleet, documented\n")
	r.commit("docs")
	// ... a commit to the layout does not.
	r.edit("fleet/stores.cue", `imapd: quota_db: "twoskip"`, `imapd: quota_db: "skiplist"`)
	head := r.commit("store23: quota_db skiplist")
	_, errOut, code := r.cyrplan("apply", planFile, "--root", root)
	if code != 1 || !strings.Contains(errOut, "the saved plan is stale") || !strings.Contains(errOut, "the layout is now at "+head[:12]) {
		t.Fatalf("apply of a plan from another commit: exit %d\n%s", code, errOut)
	}
	if written := configWritten(t, root); len(written) != 0 {
		t.Errorf("the refused apply wrote %q", written)
	}

	// A plan made at the new commit applies.
	if _, errOut, code := r.cyrplan("plan", "--root", root, "--out", planFile); code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	r.write("README.md", "the fleet, documented again\n")
	r.commit("docs again")
	if out, errOut, code := r.cyrplan("apply", planFile, "--root", root); code != 0 {
		t.Fatalf("apply of a plan whose layout did not change since: exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(root, "imap6/var/lib/cyrplan/manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), r.head()) {
		t.Errorf("the manifest does not record the commit applied, %s:\n%s", r.head(), data)
	}
}

// configWritten lists the files below root that are not cyrplan's own
// state (locks, manifests): what an apply wrote for the hosts.
func configWritten(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if parts := strings.SplitN(filepath.ToSlash(rel), "/", 2); len(parts) < 2 || !strings.HasPrefix(parts[1], "var/lib/cyrplan/") {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *layoutRepo) head() string {
	r.t.Helper()
	ref, err := r.git.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	return ref.Hash().String()
}

func TestApplyRefusesDirtyLayout(t *testing.T) {
	t.Setenv("CYRPLAN_SECRET_REPLICATION", "not-a-real-password")
	r := newLayoutRepo(t)
	root := t.TempDir()
	r.edit("fleet/stores.cue", `imapd: quota_db: "twoskip"`, `imapd: quota_db: "skiplist"`)

	out, errOut, code := r.cyrplan("apply", "--auto-approve", "--root", root)
	if code != 1 || !strings.Contains(errOut, "uncommitted changes (stores.cue)") || !strings.Contains(errOut, "--allow-dirty") {
		t.Fatalf("apply of a dirty layout: exit %d\n%s%s", code, out, errOut)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("the refused apply touched %d hosts", len(entries))
	}
	// A plan says so, and records it.
	planFile := filepath.Join(t.TempDir(), "dirty.plan")
	if _, _, code := r.cyrplan("plan", "--root", root, "--out", planFile); code != 0 {
		t.Fatal("plan of a dirty layout failed")
	}
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"dirty": true`) {
		t.Errorf("the plan file does not record the dirty layout:\n%.400s", data)
	}

	if out, errOut, code := r.cyrplan("apply", "--auto-approve", "--allow-dirty", "--root", root); code != 0 {
		t.Fatalf("apply --allow-dirty: exit %d\n%s%s", code, out, errOut)
	}
	conf, err := os.ReadFile(filepath.Join(root, "imap6/etc/cyrus/slot608/imapd.conf"))
	if err != nil || !strings.Contains(string(conf), "quota_db: skiplist") {
		t.Errorf("apply --allow-dirty did not write the working tree's layout: %v\n%s", err, conf)
	}
}
