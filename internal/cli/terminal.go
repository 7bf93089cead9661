package cli

import (
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/cyrplan/cyrplan/internal/report"
)

// painter colours text by report level on a terminal, and leaves it
// alone everywhere else (a pipe, a file, a CI log, or NO_COLOR set).
type painter bool

// painterFor is the painter for w: colours only on a terminal without
// NO_COLOR (https://no-color.org).
func painterFor(w io.Writer) painter {
	f, ok := w.(*os.File)
	return painter(ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd())))
}

// ANSI colours of the levels.
var levelColour = map[report.Level]string{
	report.OK:       "\x1b[32m", // green
	report.Warning:  "\x1b[33m", // yellow
	report.Critical: "\x1b[1;31m",
	report.Unknown:  "\x1b[35m", // magenta
}

// level paints s in the colour of l.
func (p painter) level(l report.Level, s string) string {
	if !p || s == "" {
		return s
	}
	return levelColour[l] + s + "\x1b[0m"
}

// bold paints s bold.
func (p painter) bold(s string) string {
	if !p {
		return s
	}
	return "\x1b[1m" + s + "\x1b[0m"
}

// lines paints each line of a table (whose layout is done: colours add
// no width to it) with the level colour returns for its index; a line
// whose level is OK stays plain.
func (p painter) lines(table string, colour func(i int) report.Level) string {
	if !p {
		return table
	}
	ls := strings.SplitAfter(table, "\n")
	for i, l := range ls {
		if lv := colour(i); lv != report.OK {
			body := strings.TrimSuffix(l, "\n")
			ls[i] = p.level(lv, body) + l[len(body):]
		}
	}
	return strings.Join(ls, "")
}

// progress shows how far a long command is, on a terminal only: one
// line on stderr that overwrites itself, cleared at the end.
type progress struct {
	w     io.Writer
	on    bool
	label string
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, on: bool(painterFor(w)), label: label}
}

// step shows done of total.
func (p *progress) step(done, total int) {
	if p.on {
		io.WriteString(p.w, "\r\x1b[K"+p.label+" "+strconv.Itoa(done)+"/"+strconv.Itoa(total))
	}
}

// done clears the line.
func (p *progress) done() {
	if p.on {
		io.WriteString(p.w, "\r\x1b[K")
	}
}
