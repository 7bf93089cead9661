package layout

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"cuelang.org/go/cue/token"
)

// Error is one problem in a layout, at the position of the offending
// value in the operator's files.
type Error struct {
	Pos  token.Pos // of the offending value; may be token.NoPos
	Path string    // the field, e.g. stores.store23.replicas[0]
	Msg  string
	Also token.Pos // the other value of a clash (a duplicate's first use); may be token.NoPos
	Hint string    // the next step, if there is an obvious one

	sel []string // Path as labels, for schema errors
}

// Error formats the error without shortening the file name.
func (e *Error) Error() string { return e.format("") }

// Format returns "file:line:col: path: msg" with the file name relative
// to dir when it lies below it ("./stores.cue:12:15").
func (e *Error) Format(dir string) string { return e.format(dir) }

func (e *Error) format(dir string) string {
	var b strings.Builder
	if e.Pos.IsValid() {
		fmt.Fprintf(&b, "%s: ", posString(dir, e.Pos))
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Also.IsValid() {
		fmt.Fprintf(&b, " (%s)", posString(dir, e.Also))
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return escapeControl(b.String())
}

// escapeControl writes the control characters of s as Go escapes: an
// error is one line, whatever a layout's value holds.
func escapeControl(s string) string {
	if _, ok := controlChar(s); !ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func posString(dir string, pos token.Pos) string {
	return fmt.Sprintf("%s:%d:%d", relPath(dir, pos.Filename()), pos.Line(), pos.Column())
}

func relPath(dir, file string) string {
	if dir == "" || !filepath.IsAbs(file) {
		return file
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return file
	}
	return "." + string(filepath.Separator) + rel
}

// Errors is every problem found in a layout, sorted by position.
type Errors []*Error

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "no errors"
	case 1:
		return es[0].Error()
	}
	return fmt.Sprintf("%s (and %d more errors)", es[0].Error(), len(es)-1)
}

// Format returns one line per error, file names relative to dir.
func (es Errors) Format(dir string) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Format(dir))
		b.WriteByte('\n')
	}
	return b.String()
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Filename() != b.Filename() {
			return a.Filename() < b.Filename()
		}
		if a.Line() != b.Line() {
			return a.Line() < b.Line()
		}
		if a.Column() != b.Column() {
			return a.Column() < b.Column()
		}
		return es[i].Path < es[j].Path
	})
}
