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
	sha256 string // "" unless a regular file that was hashed
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
// number of paths: one sha256sum of the paths the shell's own test finds
// regular files (not links), then one stat of every path (stat without
// -L describes a link itself; a missing path has none). A hash counts
// for a file the stat finds a regular file: what the plan shows is what
// stood there once the hashes were made, and a file changed after that
// is the next plan's. With cred, the same sha256sum makes the keyed hash
// of the value on the standard input (keyedInput), labelled cred, as
// its last line ("HASH  -"), when the host has a key. Last come the
// keyed hashes of the files at keyedPaths (keyedScript). A file swapped
// for a FIFO under the command would keep it waiting: runHashing bounds
// it.
func observeScript(paths, prefixes, keyedPaths []string, cred *Labeled) string {
	var b strings.Builder
	b.WriteString("command -v stat sha256sum base64 >/dev/null 2>&1 || { echo cyrplan-observe notools; exit 0; }\n")
	b.WriteString("echo " + observeHeader + "\nset --")
	for _, p := range paths {
		b.WriteString(" " + shell.Quote(p))
	}
	b.WriteString("\n" + keyScript())
	b.WriteString("echo hashes\n")
	// The regular files are hashed by a function, whose arguments are
	// them alone; the stat after it sees every path again.
	b.WriteString(`hashfiles() { for p in "$@"; do shift; if [ -f "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$p"; fi; done
`)
	if cred != nil {
		b.WriteString(`if [ -n "$key" ]; then IFS= read -r v; ` + valueInput(shell.Quote(cred.Label)) + ` | sha256sum -- "$@" - 2>/dev/null; el`)
	}
	b.WriteString(`if [ $# -gt 0 ]; then sha256sum -- "$@" 2>/dev/null; fi; }
hashfiles "$@"
echo stat
stat --printf 'o %f %s %n\n' -- "$@" 2>/dev/null
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
	b.WriteString(keyedScript(keyedPaths, nil))
	b.WriteString("echo end\n")
	return b.String()
}

// errNoObserve says the host cannot run the observe command: it is
// observed over SFTP.
var errNoObserve = errors.New("the host cannot run the observe command")

// observeAll runs the observe command on h; cred, if not nil, is the
// value it fingerprints.
func observeAll(ctx context.Context, h transport.Host, paths, prefixes, keyedPaths []string, cred *Labeled) (*observed, error) {
	var values []Labeled
	if cred != nil {
		values = []Labeled{*cred}
	}
	stdin, err := keyedInput(values)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	err = runHashing(ctx, h, "the observe command", observeScript(paths, prefixes, keyedPaths, cred), stdin, &out, nil)
	var ee *transport.ExitError
	if errors.Is(err, transport.ErrNoExec) || errors.As(err, &ee) {
		return nil, errNoObserve
	}
	if err != nil {
		return nil, err
	}
	return parseObserved(out.String(), paths, prefixes, cred != nil)
}

// parseObserved reads the command's output; anything but a complete
// answer (every build, the keyed hash of the value when withValue and
// the host has a key, and the end) is errNoObserve.
func parseObserved(out string, paths, prefixes []string, withValue bool) (*observed, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, transport.MaxReadSize/3*4+64)
	if !sc.Scan() || sc.Text() != observeHeader {
		return nil, errNoObserve
	}
	stats := map[string]statLine{}
	hashes := map[string]string{}
	var valueHashes []string // "-": the value's keyed hash
	ob := &observed{paths: map[string]statLine{}, builds: map[string]state.Build{}}
	section, ended, manifestSeen, keyedSeen := "", false, false, false
	for sc.Scan() && !ended {
		line := sc.Text()
		switch {
		case line == "end":
			ended = true
		case line == "hashes" && section == "", line == "stat" && section == "hashes":
			section = line
		case (line == "keyed" || line == "keyed none") && section == "stat":
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
			if path == "-" {
				valueHashes = append(valueHashes, sum)
			} else {
				hashes[path] = sum
			}
		case section == "stat" && strings.HasPrefix(line, "o "):
			f := strings.SplitN(line, " ", 4)
			if len(f) != 4 {
				return nil, errNoObserve
			}
			raw, err1 := strconv.ParseUint(f[1], 16, 32)
			size, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, errNoObserve
			}
			stats[f[3]] = statLine{exists: true, raw: uint32(raw), size: size}
		case strings.HasPrefix(line, "m ") && section == "stat":
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
		case strings.HasPrefix(line, "b ") && section == "stat":
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
	if !ended || !manifestSeen || !keyedSeen || len(ob.builds) != len(dedup(prefixes)) {
		return nil, errNoObserve
	}
	if ob.keyed != nil && withValue {
		if len(valueHashes) != 1 || !state.IsHash(valueHashes[0]) {
			return nil, errNoObserve
		}
		ob.keyed.values = valueHashes
	} else if len(valueHashes) > 0 {
		return nil, errNoObserve
	}
	for _, p := range paths {
		sl := stats[p]
		if sl.exists && sl.raw&0o170000 == 0o100000 {
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
