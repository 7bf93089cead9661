// Package secret resolves the secrets a rendered tree references, fills
// them into file contents at apply time, and keeps their values out of
// everything cyrplan shows: plans, diffs, logs.
package secret

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
)

var markerRE = regexp.MustCompile(`<<secret:([a-z0-9][a-z0-9._-]*)>>`)

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
	var out []string
	for _, line := range bytes.Split(content, []byte("\n")) {
		if markerRE.Match(line) {
			out = append(out, string(line))
		}
	}
	return out
}

// Redact hides secret values in observed, the content of a file on a
// host, using rendered, the content cyrplan renders for it: wherever a
// rendered line holds a marker, an observed line with the same text
// before and after it gets the marker in place of whatever stands there.
// The result can be compared with rendered and shown without revealing
// the value; it needs no secret to be known.
func Redact(rendered, observed []byte) []byte {
	type pattern struct{ prefix, suffix, line []byte }
	var pats []pattern
	for _, line := range bytes.Split(rendered, []byte("\n")) {
		loc := markerRE.FindIndex(line)
		if loc == nil {
			continue
		}
		pats = append(pats, pattern{prefix: line[:loc[0]], suffix: line[loc[1]:], line: line})
	}
	if len(pats) == 0 {
		return observed
	}
	lines := bytes.Split(observed, []byte("\n"))
	for i, line := range lines {
		for _, p := range pats {
			if len(line) >= len(p.prefix)+len(p.suffix) && bytes.HasPrefix(line, p.prefix) && bytes.HasSuffix(line, p.suffix) {
				lines[i] = p.line
				break
			}
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

var secretLineRE = regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]*(?:password|secret)[A-Za-z0-9_.-]*:[ \t]*).+$`)

// RedactUnrendered hides the values of password and secret options in a
// file cyrplan no longer renders and whose manifest entry records no
// marker lines (written by an older cyrplan), where there is nothing to
// redact against.
func RedactUnrendered(observed []byte) []byte {
	return secretLineRE.ReplaceAll(observed, []byte("${1}<<secret:redacted>>"))
}

// Fingerprint identifies the value of secret name without revealing it:
// an HMAC-SHA256 keyed with a host's salt. A manifest records it for
// every secret a file was written with, so that a plan sees a secret
// change without knowing, showing or storing the old value.
func Fingerprint(salt, name, value string) string {
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte("cyrplan secret fingerprint v1\x00" + name + "\x00" + value))
	return hex.EncodeToString(m.Sum(nil))
}

// NewSalt returns a fresh random salt for a host's fingerprints.
func NewSalt() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
