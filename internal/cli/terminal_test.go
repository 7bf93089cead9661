package cli

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/report/reporttest"
)

// openPTY opens a pseudo-terminal and returns its terminal side.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

func TestPainterFor(t *testing.T) {
	pts := openPTY(t)
	t.Setenv("NO_COLOR", "")
	if !painterFor(pts) {
		t.Error("no colours on a terminal")
	}
	t.Setenv("NO_COLOR", "1")
	if painterFor(pts) {
		t.Error("colours on a terminal with NO_COLOR set")
	}
	os.Unsetenv("NO_COLOR")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if painterFor(w) {
		t.Error("colours on a pipe")
	}
	if painterFor(&strings.Builder{}) {
		t.Error("colours on a buffer")
	}
}

// The coloured table is the plain one with colour around whole lines:
// the columns stay aligned.
func TestPrintStatusColours(t *testing.T) {
	rep := reporttest.Example(t)
	var plain, coloured strings.Builder
	printStatus(&plain, rep, false)
	printStatus(&coloured, rep, true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Fatalf("escape sequences without colours:\n%s", plain.String())
	}
	stripped := strings.NewReplacer("\x1b[0m", "", "\x1b[1m", "", levelColour[report.OK], "", levelColour[report.Warning], "",
		levelColour[report.Critical], "", levelColour[report.Unknown], "").Replace(coloured.String())
	if stripped != plain.String() {
		t.Errorf("the coloured output is not the plain one with colours:\n%s\nvs\n%s", coloured.String(), plain.String())
	}
	for _, want := range []string{
		levelColour[report.Critical] + "store16 ", // slot901's canary failed
		levelColour[report.Warning] + "store13 ",  // running backwards
		levelColour[report.Warning] + "store13   slot405 => slot703",
		levelColour[report.Critical] + "CRITICAL: ",
	} {
		if !strings.Contains(coloured.String(), want) {
			t.Errorf("the coloured status lacks %q:\n%s", want, coloured.String())
		}
	}
}
