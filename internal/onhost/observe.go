package onhost

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/shell"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// A host that runs commands is observed in one round trip: one command
// reports, for every path a plan looks at, what stands there (never
// following a link), its mode and size, and the SHA-256 of a regular
// file's content, and whether each build is installed. A file whose
// hash is that of its rendered content need not be read: it is its
// rendered content. A file holding secrets is its filled rendering when
// the plan knows the values; without them (status), it is what apply
// wrote when its keyed hash (see Fingerprint) is the one the manifest
// records. Only the others are read over SFTP, as on a host where the
// command cannot run.

// statLine is what the observe command says of one path.
type statLine struct {
	exists bool
	raw    uint32 // st_mode
	size   int64
	sha256 string // "" unless a regular file, hashed without it changing meanwhile
}

// mode is the fs.FileMode of a st_mode, with what Kind and Perm use.
func (s statLine) mode() fs.FileMode {
	m := fs.FileMode(s.raw & 0o777)
	switch s.raw & 0o170000 {
	case 0o040000:
		m |= fs.ModeDir
	case 0o120000:
		m |= fs.ModeSymlink
	case 0o010000:
		m |= fs.ModeNamedPipe
	case 0o140000:
		m |= fs.ModeSocket
	case 0o060000:
		m |= fs.ModeDevice
	case 0o020000:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case 0o100000:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// fileInfo is the line as transport.CheckReadable takes it.
func (s statLine) fileInfo() transport.FileInfo {
	m := s.mode()
	return transport.FileInfo{Mode: m, Size: s.size, IsDir: m.IsDir()}
}

// observed is what the command reported.
type observed struct {
	paths        map[string]statLine
	builds       map[string]state.Build
	manifest     manifestState
	manifestData []byte
	keyed        *keyed // nil: the host has no key
}

// manifestState is what the command found at hostpath.Manifest.
type manifestState int

const (
	manifestUnread manifestState = iota // not a regular file of a sane size: read it over the transport, which says why
	manifestNone                        // there is none
	manifestRead                        // manifestData is its content
)

// path is what the command said of p, and whether it was asked (never
// on a nil observed: the host was not observed by the command).
func (ob *observed) path(p string) (statLine, bool) {
	if ob == nil {
		return statLine{}, false
	}
	s, ok := ob.paths[p]
	return s, ok
}

const observeHeader = "cyrplan-observe 1"

// observeScript is the command, a handful of processes whatever the
// number of paths: one stat of every path (stat -c without -L
// describes a link itself: "o" lines; a missing path has none), one
// sha256sum of the regular files, and a second stat of those ("p"
// lines), which must agree with the first for a hash to count. test is
// the shell's own; timeout keeps a file swapped for a FIFO from hanging
// the command. Last come the keyed hashes of the files at keyedPaths and
// of the values labelled labels on the standard input (keyedScript).
func observeScript(paths, prefixes, keyedPaths, labels []string) string {
	var b strings.Builder
	b.WriteString("command -v stat sha256sum timeout base64 >/dev/null 2>&1 || { echo cyrplan-observe notools; exit 0; }\n")
	b.WriteString("echo " + observeHeader + "\nset --")
	for _, p := range paths {
		b.WriteString(" " + shell.Quote(p))
	}
	b.WriteString(`
stat --printf 'o %f %s %i %n\n' -- "$@" 2>/dev/null
for p in "$@"; do shift; if [ -f "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$p"; fi; done
echo hashes
if [ $# -gt 0 ]; then timeout 60 sha256sum -- "$@" 2>/dev/null; echo again; stat --printf 'p %f %s %i %n\n' -- "$@" 2>/dev/null; else echo again; fi
`)
	for _, p := range prefixes {
		q := shell.Quote(p)
		fmt.Fprintf(&b, "if test -x %s/bin/master; then echo b 1 %s; else echo b 0 %s; fi\n", q, q, q)
	}
	// The manifest, in base64 (one over MaxReadSize is read over the
	// transport, which refuses it), written straight out: no subshell.
	m := shell.Quote(hostpath.Manifest)
	fmt.Fprintf(&b, "if [ ! -e %s ] && [ ! -L %s ]; then echo m none; elif [ -f %s ] && [ ! -L %s ]; then printf 'm '; base64 -w0 -- %s; echo; else echo m other; fi\n",
		m, m, m, m, m)
	b.WriteString(keyedScript(keyedPaths, labels))
	b.WriteString("echo end\n")
	return b.String()
}

// errNoObserve says the host cannot run the observe command: it is
// observed over SFTP.
var errNoObserve = errors.New("the host cannot run the observe command")

// observeAll runs the observe command on h.
func observeAll(ctx context.Context, h transport.Host, paths, prefixes, keyedPaths []string, values []Labeled) (*observed, error) {
	stdin, err := keyedInput(values)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	err = h.Run(ctx, observeScript(paths, prefixes, keyedPaths, labels(values)), stdin, &out, nil)
	var ee *transport.ExitError
	if errors.Is(err, transport.ErrNoExec) || errors.As(err, &ee) {
		return nil, errNoObserve
	}
	if err != nil {
		return nil, err
	}
	return parseObserved(out.String(), paths, prefixes, len(values))
}

// parseObserved reads the command's output; anything but a complete
// answer (every build, the keyed hashes of the n values and the end) is
// errNoObserve.
func parseObserved(out string, paths, prefixes []string, n int) (*observed, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, transport.MaxReadSize/3*4+64)
	if !sc.Scan() || sc.Text() != observeHeader {
		return nil, errNoObserve
	}
	type stat struct {
		raw   uint32
		size  int64
		inode string
	}
	first, again := map[string]stat{}, map[string]stat{}
	hashes := map[string]string{}
	ob := &observed{paths: map[string]statLine{}, builds: map[string]state.Build{}}
	section, ended, manifestSeen, keyedSeen := "o", false, false, false
	for sc.Scan() && !ended {
		line := sc.Text()
		switch {
		case line == "end":
			ended = true
		case line == "hashes" && section == "o", line == "again" && section == "hashes":
			section = line
		case (line == "keyed" || line == "keyed none") && section == "again":
			section, keyedSeen = "keyed", true
			if line == "keyed" {
				ob.keyed = &keyed{files: map[string]string{}}
			}
		case section == "keyed":
			if ob.keyed == nil || !ob.keyed.parseLine(line) {
				return nil, errNoObserve
			}
		case section == "hashes":
			sum, path, ok := strings.Cut(line, "  ")
			if !ok || len(sum) != 64 {
				return nil, errNoObserve
			}
			hashes[path] = sum
		case section == "o" && strings.HasPrefix(line, "o "), section == "again" && strings.HasPrefix(line, "p "):
			f := strings.SplitN(line, " ", 5)
			if len(f) != 5 {
				return nil, errNoObserve
			}
			raw, err1 := strconv.ParseUint(f[1], 16, 32)
			size, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, errNoObserve
			}
			into := first
			if section == "again" {
				into = again
			}
			into[f[4]] = stat{uint32(raw), size, f[3]}
		case strings.HasPrefix(line, "m ") && section == "again":
			switch v := line[2:]; v {
			case "none":
				ob.manifest = manifestNone
			case "other":
				ob.manifest = manifestUnread
			default:
				data, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					return nil, errNoObserve
				}
				if len(data) <= transport.MaxReadSize {
					ob.manifest, ob.manifestData = manifestRead, data
				}
			}
			manifestSeen = true
		case strings.HasPrefix(line, "b ") && section == "again":
			f := strings.SplitN(line, " ", 3)
			if len(f) != 3 {
				return nil, errNoObserve
			}
			ob.builds[f[2]] = state.BuildMissing
			if f[1] == "1" {
				ob.builds[f[2]] = state.BuildPresent
			}
		default:
			return nil, errNoObserve
		}
	}
	if !ended || !manifestSeen || !keyedSeen || len(ob.builds) != len(dedup(prefixes)) || ob.keyed != nil && len(ob.keyed.values) != n {
		return nil, errNoObserve
	}
	for _, p := range paths {
		st, ok := first[p]
		if !ok {
			ob.paths[p] = statLine{}
			continue
		}
		sl := statLine{exists: true, raw: st.raw, size: st.size}
		if a, ok := again[p]; ok && a == st {
			sl.sha256 = hashes[p]
		}
		ob.paths[p] = sl
	}
	return ob, nil
}

func dedup(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, x := range s {
		m[x] = true
	}
	return m
}
