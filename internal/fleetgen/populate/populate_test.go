package populate_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/cli"
	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/fleetgen/populate"
	"github.com/cyrplan/cyrplan/internal/testhosts"
)

// TestPopulate fills two simulated hosts and checks that cyrplan plan
// then finds nothing to do, and that no slot was started.
func TestPopulate(t *testing.T) {
	testhosts.Require(t)
	const master = "/usr/lib/cyrus/bin/master"
	if _, err := os.Stat(master); err != nil {
		if os.Getenv("CYRPLAN_E2E") == "1" {
			t.Fatalf("CYRPLAN_E2E=1 but Cyrus is not installed: %v", err)
		}
		t.Skipf("Cyrus is not installed (%v): plan checks each host has the layout's build", err)
	}
	names := []string{"imap1", "imap2"}
	fl := testhosts.Up(t, names...)
	dir := t.TempDir()
	o := fleetgen.Options{Hosts: 2, SlotsPerHost: 4, Names: names, Prefix: "/usr/lib/cyrus", PinnedPrefix: "/usr/lib/cyrus"}
	for _, n := range names {
		o.Addresses = append(o.Addresses, fl.Host(n).Addr)
	}
	if err := fleetgen.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CYRPLAN_SECRET_REPLICATION": "pw-populate"}
	n, err := populate.Populate(context.Background(), populate.Config{Layout: dir, KnownHosts: fl.KnownHosts,
		Identity: fl.Identity, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*4*5 {
		t.Errorf("%d files written, want %d", n, 2*4*5)
	}
	data, err := os.ReadFile(filepath.Join(fl.Host("imap1").Dir, "upper/etc/cyrus/slot101/imapd.conf"))
	if err != nil || !bytes.Contains(data, []byte("pw-populate")) {
		t.Errorf("slot101's imapd.conf lacks the secret (%v)", err)
	}
	if _, err := os.Stat(fl.Host("imap1").Path("/run/cyrus-slot101.pid")); err == nil {
		t.Errorf("slot101 was started; populate must run no command")
	}
	t.Setenv("CYRPLAN_SECRET_REPLICATION", env["CYRPLAN_SECRET_REPLICATION"])
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"plan", "--detailed-exitcode", "--layout", dir,
		"--known-hosts", fl.KnownHosts, "--identity", fl.Identity}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "No changes") {
		t.Errorf("plan after populate: exit %d, want 0 and no changes:\n%s%s", code, out.String(), errb.String())
	}
}
