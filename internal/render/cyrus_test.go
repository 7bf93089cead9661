package render_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/treedir"
)

const cyrInfo = "/usr/lib/cyrus/bin/cyr_info"

// requireCyrInfo skips t without Debian's cyr_info, or fails it under
// CYRPLAN_E2E=1 (CI), which installs cyrus-common and never skips.
func requireCyrInfo(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(cyrInfo); err != nil {
		if os.Getenv("CYRPLAN_E2E") == "1" {
			t.Fatalf("CYRPLAN_E2E=1 but %s is missing: apt-get install cyrus-common", cyrInfo)
		}
		t.Skipf("%s not installed (apt-get install cyrus-common); set CYRPLAN_E2E=1 to require it", cyrInfo)
	}
}

// TestConfLint runs Debian's cyr_info conf-lint over every rendered
// imapd.conf with each of its cyrus.conf files. conf-lint exits 0 even
// when it finds unknown options, so its output must be empty as well.
// It needs cyrus-common; CI (CYRPLAN_E2E=1) installs it and never skips.
func TestConfLint(t *testing.T) {
	requireCyrInfo(t)
	dir := readableDir(t)
	if err := treedir.Write(dir, render.Render(example(t))); err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob(filepath.Join(dir, "*", "etc", "cyrus", "*", "imapd.conf"))
	if len(confs) < 29 {
		t.Fatalf("found %d imapd.conf files; want one per slot", len(confs))
	}
	for _, conf := range confs {
		masters, _ := filepath.Glob(filepath.Join(filepath.Dir(conf), "cyrus-*.conf"))
		if len(masters) == 0 {
			t.Errorf("%s: no cyrus.conf beside it", conf)
		}
		for _, m := range masters {
			out, err := exec.Command(cyrInfo, "-C", conf, "-M", m, "conf-lint").CombinedOutput()
			rel, _ := filepath.Rel(dir, m)
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("cyr_info conf-lint with %s: %v\n%s", rel, err, out)
			}
		}
	}
}

// TestConfLintCatches proves the test above can fail: conf-lint reports
// an option Cyrus does not know.
func TestConfLintCatches(t *testing.T) {
	requireCyrInfo(t)
	dir := readableDir(t)
	conf := filepath.Join(dir, "imapd.conf")
	os.WriteFile(conf, []byte("configdirectory: "+dir+"\nsync_hots: x\n"), 0o644)
	cc := filepath.Join(dir, "cyrus.conf")
	os.WriteFile(cc, []byte("SERVICES {\n}\n"), 0o644)
	out, _ := exec.Command(cyrInfo, "-C", conf, "-M", cc, "conf-lint").CombinedOutput()
	if !strings.Contains(string(out), "sync_hots") {
		t.Errorf("conf-lint did not report sync_hots: %q", out)
	}
}

// readableDir is a temporary directory that the cyrus user can read:
// cyr_info drops to it before it reads cyrus.conf.
func readableDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "cyrplan-lint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
