// Package secret resolves the secrets a rendered tree references, fills
// them into file contents at apply time, and keeps their values out of
// everything cyrplan shows: plans, diffs, logs.
package secret

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
)

var markerRE = regexp.MustCompile(`<<secret:([a-z0-9][a-z0-9._-]*)>>`)

// markerStart begins every match of markerRE: content without it holds
// no marker, which bytes.Contains finds far faster than the expression.
var markerStart = []byte("<<secret:")

// Values are resolved secrets by name.
type Values map[string]string

// Resolve reads the named secrets from the environment (getenv is
// os.Getenv outside tests). A missing or empty variable is an error
// naming every one that is missing.
func Resolve(l *layout.Layout, names []string, getenv func(string) string) (Values, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	v := Values{}
	var missing []string
	for _, name := range names {
		s := l.Secrets[name]
		if s == nil {
			missing = append(missing, fmt.Sprintf("%s (not declared in secrets)", name))
			continue
		}
		val := getenv(s.Env)
		if val == "" {
			missing = append(missing, fmt.Sprintf("%s (set %s)", name, s.Env))
			continue
		}
		if strings.ContainsAny(val, "\n\r") {
			return nil, fmt.Errorf("secret %s: %s contains a line break", name, s.Env)
		}
		v[name] = val
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("secrets missing from the environment: %s", strings.Join(missing, ", "))
	}
	return v, nil
}

// Known returns the values of the layout's secrets that are set in the
// environment, for scrubbing output; a missing one is no error.
func Known(l *layout.Layout, getenv func(string) string) Values {
	if getenv == nil {
		getenv = os.Getenv
	}
	v := Values{}
	for name, s := range l.Secrets {
		if val := getenv(s.Env); val != "" {
			v[name] = val
		}
	}
	return v
}

// HasMarker says whether content holds a secret's marker.
func HasMarker(content []byte) bool {
	return bytes.Contains(content, markerStart) && markerRE.Match(content)
}

// Fill replaces every marker in content with its value.
func (v Values) Fill(content []byte) ([]byte, error) {
	var err error
	out := markerRE.ReplaceAllFunc(content, func(m []byte) []byte {
		name := string(markerRE.FindSubmatch(m)[1])
		val, ok := v[name]
		if !ok {
			err = fmt.Errorf("secret %s was not resolved", name)
			return m
		}
		return []byte(val)
	})
	return out, err
}

// Scrub replaces every secret value in s with its marker: the last line
// of defence for text cyrplan prints (a command's output, an error).
func (v Values) Scrub(s string) string {
	for name, val := range v {
		if val != "" {
			s = strings.ReplaceAll(s, val, render.SecretMarker(name))
		}
	}
	return s
}

// Names returns the secrets that content references, sorted, each once.
func Names(content []byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range markerRE.FindAllSubmatch(content, -1) {
		if n := string(m[1]); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// MarkerLines returns the lines of content that hold a secret marker.
func MarkerLines(content []byte) []string {
	if !bytes.Contains(content, markerStart) {
		return nil
	}
	var out []string
	for _, line := range bytes.Split(content, []byte("\n")) {
		if markerRE.Match(line) {
			out = append(out, string(line))
		}
	}
	return out
}

var secretLineRE = regexp.MustCompile(`^([A-Za-z0-9_.-]*(?:password|secret|passwd|pass|key)[A-Za-z0-9_.-]*:[ \t]*)(.+)$`)

// Redact hides secret values in observed, the content of a file on a
// host, failing closed: wherever a line of known (the content cyrplan
// renders for the file, and the marker lines it recorded when it wrote
// it) holds a marker, an observed line with the same text before and
// after it gets the marker in place of whatever stands there; and every
// other line that sets a password-, secret- or key-like option is
// redacted too, unless known holds it as it is (a value the layout sets
// in the open). The result can be compared with the rendered content
// and shown without revealing a value; it needs no secret to be known.
func Redact(known, observed []byte) []byte {
	type pattern struct{ prefix, suffix, line []byte }
	var pats []pattern
	plain := map[string]bool{}
	for _, line := range bytes.Split(known, []byte("\n")) {
		var loc []int
		if bytes.Contains(line, markerStart) {
			loc = markerRE.FindIndex(line)
		}
		if loc == nil {
			plain[string(line)] = true
			continue
		}
		pats = append(pats, pattern{prefix: line[:loc[0]], suffix: line[loc[1]:], line: line})
	}
	lines := bytes.Split(observed, []byte("\n"))
	for i, line := range lines {
		redacted := false
		for _, p := range pats {
			if len(line) >= len(p.prefix)+len(p.suffix) && bytes.HasPrefix(line, p.prefix) && bytes.HasSuffix(line, p.suffix) {
				lines[i], redacted = p.line, true
				break
			}
		}
		if !redacted && !plain[string(line)] && !HasMarker(line) {
			lines[i] = secretLineRE.ReplaceAll(line, []byte("${1}<<secret:redacted>>"))
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// Writer passes what is written to it on to w a line at a time, with
// every known secret value replaced by its marker and the value of every
// line that sets a password-, secret- or key-like option redacted: for
// the output of a tool run on a host (cyr_info conf prints the
// replication password). Close writes what is left of a last line.
type Writer struct {
	w      io.Writer
	values Values
	buf    []byte
}

// NewWriter returns a Writer onto w that scrubs values.
func NewWriter(w io.Writer, values Values) *Writer { return &Writer{w: w, values: values} }

func (s *Writer) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := s.line(s.buf[:i+1]); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
	}
}

// Close writes the last line if it had no line break.
func (s *Writer) Close() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.line(s.buf)
	s.buf = nil
	return err
}

func (s *Writer) line(l []byte) error {
	text := strings.TrimRight(string(l), "\n")
	out := s.values.Scrub(text)
	if !markerRE.MatchString(out) {
		out = secretLineRE.ReplaceAllString(out, "${1}<<secret:redacted>>")
	}
	if len(text) < len(l) {
		out += "\n"
	}
	_, err := io.WriteString(s.w, out)
	return err
}
