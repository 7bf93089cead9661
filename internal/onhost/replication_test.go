package onhost

import (
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/hostpath"
)

func TestParseReplication(t *testing.T) {
	out := strings.Join([]string{
		"log slot308 4 1700000000 1700000090", // log-run: created at 1700000000
		"log slot308 2 1700000100 1700000110", // log
		"client slot308 1",
		"log slot901 3 0 1700000050", // no creation time: the last write, a lower bound
		"client slot901 0",
		"client slot402 1",
		"now 1700000200",
	}, "\n") + "\n"
	got, err := parseReplication(out, []string{"slot308", "slot901", "slot402"})
	if err != nil {
		t.Fatal(err)
	}
	r := got["slot308"]
	if r.Backlog != 6 || r.BacklogAge != 200 || r.BacklogAgeBound || r.SyncClient == nil || !*r.SyncClient {
		t.Errorf("slot308: %+v", r)
	}
	r = got["slot901"]
	if r.Backlog != 3 || r.BacklogAge != 150 || !r.BacklogAgeBound || r.SyncClient == nil || *r.SyncClient {
		t.Errorf("slot901: %+v", r)
	}
	r = got["slot402"]
	if r.Backlog != 0 || r.BacklogAge != 0 || r.SyncClient == nil || !*r.SyncClient {
		t.Errorf("slot402: %+v", r)
	}
}

func TestParseReplicationBad(t *testing.T) {
	for _, out := range []string{
		"",                           // no time
		"log slot308 x 0 0\nnow 1\n", // not a number
		"hello\nnow 1\n",             // an unknown line
		"now yesterday\n",
	} {
		if _, err := parseReplication(out, []string{"slot308"}); err == nil {
			t.Errorf("parseReplication(%q): no error", out)
		}
	}
}

// The script quotes every path and peer, and looks for the exact
// sync_client of each peer (slot90 is not slot901).
func TestReplicationScript(t *testing.T) {
	s := replicationScript(hostpath.Of("slot608", "/mnt/meta8"), []string{"slot308"})
	for _, want := range []string{
		"if [ -s '/mnt/meta8/conf/sync/slot308/log-run' ]; then echo log 'slot308' ",
		"grep -qF -- 'sync_client -C /etc/cyrus/slot608/imapd.conf -r -n slot308 '",
		"echo now $(date +%s)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the script lacks %q:\n%s", want, s)
		}
	}
}
