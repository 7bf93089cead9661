package layout

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want files of testdata/bad/*.txtar")

// TestBadLayouts loads every layout in testdata/bad and compares the
// formatted errors with the archive's want file, exactly.
func TestBadLayouts(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d bad layouts in testdata/bad, want at least 20", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var want []byte
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					want, wantIdx = f.Data, i
					continue
				}
				writeFile(t, filepath.Join(dir, f.Name), f.Data)
			}
			if wantIdx < 0 && !*update {
				t.Fatalf("%s has no want file (run go test -update)", file)
			}

			got := loadBad(t, dir)

			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = []byte(got)
				if err := os.WriteFile(file, txtar.Format(ar), 0o666); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(want) {
				t.Errorf("Load errors differ from the want file of %s (-want +got):\n%s", file, lineDiff(string(want), got))
			}
		})
	}
}

// loadBad loads the layout in dir, which must fail with Errors, and
// returns them formatted relative to dir. A panic fails the test.
func loadBad(t *testing.T, dir string) (out string) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Load panicked: %v\n%s", r, debug.Stack())
		}
	}()
	l, err := Load(dir)
	if err == nil {
		t.Fatalf("Load succeeded (%d hosts, %d slots, %d stores), want errors", len(l.Hosts), len(l.Slots), len(l.Stores))
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error is %T, not Errors: %v", err, err)
	}
	out = errs.Format(dir)
	for _, e := range errs {
		if !e.Pos.IsValid() {
			t.Errorf("error without a position: %s", e.Format(dir))
		} else if !strings.HasPrefix(e.Pos.Filename(), dir+string(filepath.Separator)) {
			t.Errorf("error position is outside the layout: %s", e.Format(dir))
		}
	}
	return out
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o666); err != nil {
		t.Fatal(err)
	}
}

// lineDiff is a small line diff (longest common subsequence): lines only
// in want are marked "-", lines only in got "+", common lines " ".
func lineDiff(want, got string) string {
	a := strings.SplitAfter(want, "\n")
	b := strings.SplitAfter(got, "\n")
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var buf bytes.Buffer
	line := func(mark byte, s string) {
		if s == "" {
			return
		}
		fmt.Fprintf(&buf, "%c %s", mark, s)
		if !strings.HasSuffix(s, "\n") {
			buf.WriteString("\n\\ no newline at end\n")
		}
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			line(' ', a[i])
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			line('-', a[i])
			i++
		default:
			line('+', b[j])
			j++
		}
	}
	for ; i < len(a); i++ {
		line('-', a[i])
	}
	for ; j < len(b); j++ {
		line('+', b[j])
	}
	return buf.String()
}
