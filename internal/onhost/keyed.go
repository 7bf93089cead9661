package onhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Keyed hashes. What holds a secret (a file written with one, the
// password provisioned in a sasldb) is recognised by a hash that the
// host makes with a key of its own, hostpath.HashKey (64 hex digits of
// 32 random bytes), which only root there can read and cyrplan never
// reads:
//
//	file:  SHA-256(key || "file\0" || content)
//	value: SHA-256(key || "value\0" || label || "\0" || value)
//
// A manifest records them, so that a host whose copy has the recorded
// hash is known to hold what apply wrote without its content being
// read; and since the key stays on the host, no one holding a manifest
// or a plan can test a guessed secret against them. Only a host that
// runs commands has a key (apply makes it there); elsewhere files are
// read, as before.

// Labeled is a value for a host to fingerprint, under a label that says
// what it is (see state.CredentialsLabel). Neither holds a line break.
type Labeled struct{ Label, Value string }

// keyScript is the shell that reads the host's key into $key, which is
// empty unless the key is one (64 hex digits). The shell reads it
// itself (read is built in): the key is never in a command's arguments.
func keyScript() string {
	k := shell.Quote(hostpath.HashKey)
	return fmt.Sprintf("key=; if [ -f %s ] && [ ! -L %s ]; then IFS= read -r key < %s || :; fi\n", k, k, k) +
		"case $key in *[!0-9a-f]*) key= ;; esac\n[ ${#key} -eq 64 ] || key=\n"
}

// valueInput is the shell that writes what the keyed hash of the value
// $v labelled by the shell word label is made of, printed by the shell
// itself (printf is built in): no value is in a command's arguments.
func valueInput(label string) string {
	return `{ printf %s "$key"; printf 'value\000'; printf %s ` + label + `; printf '\000'; printf %s "$v"; }`
}

// keyedScript is the shell that, after keyScript, makes the keyed hashes
// of the regular files at paths ("k PATH HASH  -" lines) and of the
// values that keyedInput wrote to its standard input, one for each of
// labels ("v HASH  -" lines, in order), after a "keyed" line; "keyed
// none" if the host has no key. A value costs one sha256sum.
func keyedScript(paths, labels []string) string {
	var b strings.Builder
	b.WriteString("if [ -n \"$key\" ]; then echo keyed\n")
	if len(paths) > 0 {
		b.WriteString("for p in")
		for _, p := range paths {
			b.WriteString(" " + shell.Quote(p))
		}
		b.WriteString("; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then printf 'k %s ' \"$p\"; { printf %s \"$key\"; printf 'file\\000'; cat -- \"$p\"; } | sha256sum; fi; done\n")
	}
	if len(labels) > 0 {
		b.WriteString("for l in")
		for _, l := range labels {
			b.WriteString(" " + shell.Quote(l))
		}
		b.WriteString("; do IFS= read -r v; printf 'v '; " + valueInput(`"$l"`) + " | sha256sum; done\n")
	}
	b.WriteString("else echo keyed none; fi\n")
	return b.String()
}

// readTimeout bounds the commands that hash files (the observe command,
// Fingerprint's): they take well under a second, but a file swapped for
// a FIFO between the shell's test and its hash would keep one waiting
// for ever.
var readTimeout = time.Minute

// runHashing runs script on h, bounded by readTimeout; what names the
// command in the error that says it took longer.
func runHashing(ctx context.Context, h transport.Host, what, script string, stdin io.Reader, stdout, stderr io.Writer) error {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	err := h.Run(rctx, script, stdin, stdout, stderr)
	if err != nil && ctx.Err() == nil && rctx.Err() != nil {
		return fmt.Errorf("%s: %s did not finish within %v (a file it reads may have been swapped for a FIFO)", h.Name(), what, readTimeout)
	}
	return err
}

// labels are the labels of values.
func labels(values []Labeled) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = v.Label
	}
	return out
}

// keyedInput is the standard input of keyedScript for values: each on a
// line of its own.
func keyedInput(values []Labeled) (io.Reader, error) {
	if len(values) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	for _, v := range values {
		if strings.ContainsAny(v.Label+v.Value, "\n\r") {
			return nil, fmt.Errorf("the value labelled %.40q holds a line break: it cannot be fingerprinted", v.Label)
		}
		b.WriteString(v.Value + "\n")
	}
	return &b, nil
}

// keyed is what keyedScript said: nil if the host has no key.
type keyed struct {
	files  map[string]string // by path
	values []string          // in the order asked
}

// parseLine reads one line of keyedScript's output after its
// "keyed" line; false if it is not one.
func (k *keyed) parseLine(line string) bool {
	kind, rest, _ := strings.Cut(line, " ")
	rest, ok := strings.CutSuffix(rest, "  -")
	if !ok {
		return false
	}
	switch kind {
	case "k":
		i := strings.LastIndexByte(rest, ' ')
		if i < 0 || !state.IsHash(rest[i+1:]) {
			return false
		}
		k.files[rest[:i]] = rest[i+1:]
	case "v":
		if !state.IsHash(rest) {
			return false
		}
		k.values = append(k.values, rest)
	default:
		return false
	}
	return true
}

const fingerprintHeader = "cyrplan-keyed 1"

// IsFingerprint says whether cmd is Fingerprint's command, which starts
// and stops nothing: for a host that runs no other (see package
// populate).
func IsFingerprint(cmd string) bool { return strings.Contains(cmd, "\necho "+fingerprintHeader+"\n") }

// Fingerprint has h make the keyed hashes of the files at paths (those
// that are regular files) and of values, making its key first if it has
// none. It returns them by path and by label; nothing, and no error, on
// a host that cannot run the command (no commands, not the tools, not a
// shell that runs it):
// it has no key, and files that hold secrets are read there.
func Fingerprint(ctx context.Context, h transport.Host, paths []string, values []Labeled) (map[string]string, map[string]string, error) {
	k := shell.Quote(hostpath.HashKey)
	tmp := shell.Quote(path.Dir(hostpath.HashKey) + "/" + transport.TempPrefix + path.Base(hostpath.HashKey))
	script := "command -v sha256sum od tr >/dev/null 2>&1 || exit 127\n" +
		fmt.Sprintf("echo %s\nif [ ! -e %s ] && [ ! -L %s ]; then mkdir -p %s && rm -f %s && (umask 077; set -C; { od -An -tx1 -N32 /dev/urandom | tr -d ' \\n'; echo; } > %s) && mv -f %s %s || exit 1; fi\n",
			fingerprintHeader, k, k, shell.Quote(path.Dir(hostpath.HashKey)), tmp, tmp, tmp, k) + keyScript() + keyedScript(paths, labels(values)) + "echo end\n"
	stdin, err := keyedInput(values)
	if err != nil {
		return nil, nil, err
	}
	var out, errOut strings.Builder
	err = runHashing(ctx, h, "the keyed hash command", script, stdin, &out, &errOut)
	var ee *transport.ExitError
	if errors.Is(err, transport.ErrNoExec) || errors.As(err, &ee) && ee.Code == 127 {
		return nil, nil, nil
	}
	if ee != nil {
		return nil, nil, fmt.Errorf("%s: could not make its key %s for the hashes of the files that hold secrets (exit status %d): %.200s",
			h.Name(), hostpath.HashKey, ee.Code, strings.TrimSpace(errOut.String()))
	}
	if err != nil {
		return nil, nil, err
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if lines[0] != fingerprintHeader {
		return nil, nil, nil // not a shell that ran it
	}
	bad := fmt.Errorf("%s: the keyed hashes of the files that hold secrets were not made: the host said %.200q", h.Name(), out.String())
	if len(lines) < 3 || lines[1] != "keyed" || lines[len(lines)-1] != "end" {
		return nil, nil, bad
	}
	kd := &keyed{files: map[string]string{}}
	for _, line := range lines[2 : len(lines)-1] {
		if !kd.parseLine(line) {
			return nil, nil, bad
		}
	}
	if len(kd.values) != len(values) {
		return nil, nil, bad
	}
	return kd.files, kd.byLabel(values), nil
}

// byLabel returns the fingerprints of kd's values by label, nil
// when the host had no key.
func (kd *keyed) byLabel(values []Labeled) map[string]string {
	if kd == nil || len(kd.values) != len(values) {
		return nil
	}
	out := make(map[string]string, len(values))
	for i, v := range values {
		out[v.Label] = kd.values[i]
	}
	return out
}
