package metrics

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/rogpeppe/go-internal/diff"

	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/report/reporttest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func write(t *testing.T, s *report.Status) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestExample: the example fleet's report reads as testdata/example.om.
func TestExample(t *testing.T) {
	got := write(t, reporttest.Example(t))
	const golden = "testdata/example.om"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/metrics -run Example -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (-update rewrites it):\n%s", golden, diff.Diff(golden, want, "got", got))
	}
}

// TestOpenMetrics: the example's output is OpenMetrics 1.0 by the
// grammar of the spec, as expfmt's strict parser reads it, and reads back
// as itself.
func TestOpenMetrics(t *testing.T) {
	got := write(t, reporttest.Example(t))
	format := expfmt.NewFormat(expfmt.TypeOpenMetrics)
	dec := expfmt.NewDecoder(bytes.NewReader(got), format)
	var again bytes.Buffer
	enc := expfmt.NewEncoder(&again, format)
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(&mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.(expfmt.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, again.Bytes()) {
		t.Errorf("the output does not read back as itself:\n%s", diff.Diff("written", got, "read back", again.Bytes()))
	}
}

// TestPromtool: promtool check metrics, Prometheus's own linter, finds
// nothing to say about the example's metrics. It needs promtool (Debian's
// prometheus package); CI (CYRPLAN_E2E=1) installs it and never skips.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CYRPLAN_E2E") == "1" {
			t.Fatalf("CYRPLAN_E2E=1 but promtool is missing: apt-get install prometheus")
		}
		t.Skip("promtool not installed (apt-get install prometheus); set CYRPLAN_E2E=1 to require it")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(write(t, reporttest.Example(t)))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestLocal: a report read from a --root directory, where nothing runs,
// says nothing about whether slots are up.
func TestLocal(t *testing.T) {
	s := reporttest.Example(t)
	s.Local = true
	for i := range s.Stores {
		for j := range s.Stores[i].Slots {
			sl := &s.Stores[i].Slots[j]
			sl.Health, sl.Running = report.HealthUnknown, ""
		}
	}
	got := string(write(t, s))
	if strings.Contains(got, "cyrplan_slot_up") {
		t.Errorf("a --root report has cyrplan_slot_up:\n%s", got)
	}
	if !strings.Contains(got, `cyrplan_slot_drift_files{host="imap5",slot="slot502",store="store15"} 1.0`) {
		t.Errorf("a --root report lost its drift:\n%s", got)
	}
}

// TestVerifyFailed: a verify that could not compare counts no divergent
// mailboxes, but still says when it ran.
func TestVerifyFailed(t *testing.T) {
	s := reporttest.Example(t)
	s.Stores[0].Verify.Error = "the master could not be read"
	got := string(write(t, s))
	if strings.Contains(got, `cyrplan_store_verify_divergent_mailboxes{store="store11"}`) {
		t.Errorf("a failed verify has divergent mailboxes:\n%s", got)
	}
	if !strings.Contains(got, `cyrplan_store_verify_time_seconds{store="store11"}`) {
		t.Errorf("a failed verify lost its time:\n%s", got)
	}
}

// TestNotUTF8: a label value that is not UTF-8 is an error, not a panic.
func TestNotUTF8(t *testing.T) {
	s := reporttest.Example(t)
	s.Stores[0].Slots[0].Running = "/usr/lib/cyrus/bin/\xffmaster"
	if err := Write(io.Discard, s); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("Write: %v, want an error about UTF-8", err)
	}
}

// TestEmpty: a report on nothing is its level and the end.
func TestEmpty(t *testing.T) {
	const want = `# HELP cyrplan_status_level The Nagios level of the whole cyrplan status report, its exit code: 0 ok, 1 warning, 2 critical, 3 unknown.
# TYPE cyrplan_status_level gauge
cyrplan_status_level 0.0
# EOF
`
	if got := string(write(t, &report.Status{})); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
