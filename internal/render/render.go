// Package render compiles a layout into the rendered tree: for every host,
// the exact directories and files (path, mode, owner, content) that must
// exist on it. It is pure: no I/O, no clock, no randomness, so the same
// layout always renders to the same bytes.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"runtime"
	"sort"
	"sync"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
)

// Tree is the rendered tree of a layout.
type Tree struct {
	Hosts map[string]*Host
	order []string
}

// HostNames returns the hosts in layout order (by host number).
func (t *Tree) HostNames() []string { return t.order }

// Host is what one host must hold.
type Host struct {
	Name  string
	Dirs  []Dir  // sorted by path; parents before children
	Files []File // sorted by path
}

// Dir is a directory cyrplan ensures. Directories are created, never
// removed: they hold mail.
type Dir struct {
	Path  string
	Mode  fs.FileMode
	Owner string
	Group string
	Slot  string
}

// File is a file cyrplan owns.
type File struct {
	Path    string
	Mode    fs.FileMode
	Owner   string
	Group   string
	Content []byte
	Slot    string // the slot it belongs to
	Kind    Kind
	Secrets []string // names of the secrets whose markers it contains
	SHA256  string   // of Content, hex
}

// Kind says what a file is for; plan and apply derive actions from it.
type Kind string

// The kinds of rendered files.
const (
	IMAPDConf  Kind = "imapd.conf"
	CyrusConf  Kind = "cyrus.conf"
	InitScript Kind = "init"
	Unit       Kind = "unit"
)

// Kinds are all the kinds, for checking a kind read from a host.
var Kinds = []Kind{IMAPDConf, CyrusConf, InitScript, Unit}

// SecretMarker is what stands in the rendered tree for a secret's value.
// apply replaces it with the value; plans, golden files and logs only
// ever show the marker.
func SecretMarker(name string) string { return "<<secret:" + name + ">>" }

// Render compiles l into its rendered tree. Hosts are independent and
// rendered on every core; the result is the same bytes however many.
func Render(l *layout.Layout) *Tree {
	t := &Tree{Hosts: map[string]*Host{}, order: l.HostNames()}
	slots := map[string][]*layout.Slot{}
	for _, name := range l.SlotNames() {
		s := l.Slots[name]
		slots[s.Host] = append(slots[s.Host], s)
	}
	work := make(chan *Host)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var scratch bytes.Buffer
			for h := range work {
				for _, s := range slots[h.Name] {
					h.Dirs = append(h.Dirs, slotDirs(s)...)
					h.Files = append(h.Files, slotFiles(&scratch, l, s)...)
				}
				h.Dirs = dedupDirs(h.Dirs)
				sort.Slice(h.Files, func(i, j int) bool { return h.Files[i].Path < h.Files[j].Path })
			}
		})
	}
	for _, name := range t.order {
		h := &Host{Name: name}
		t.Hosts[name] = h
		work <- h
	}
	close(work)
	wg.Wait()
	return t
}

func slotDirs(s *layout.Slot) []Dir {
	p := hostpath.Of(s.Name, s.Meta)
	d := func(path string, mode fs.FileMode, owner, group string) Dir {
		return Dir{Path: path, Mode: mode, Owner: owner, Group: group, Slot: s.Name}
	}
	return []Dir{
		d(hostpath.ConfigRoot, 0o755, "root", "root"),
		d(p.ConfigDir, 0o755, "root", "root"),
		d(s.Meta, 0o755, "root", "root"),
		d(p.ConfigDB, 0o750, "cyrus", "mail"),
		d(p.ConfigDB+"/socket", 0o750, "cyrus", "mail"),
		d(p.ConfigDB+"/db", 0o700, "cyrus", "mail"),
		d(s.Meta+"/meta", 0o750, "cyrus", "mail"),
		d(s.Meta+"/sieve", 0o750, "cyrus", "mail"),
		d(s.Data, 0o755, "root", "root"),
		d(s.Data+"/spool", 0o750, "cyrus", "mail"),
	}
}

// dedupDirs sorts dirs by path and drops repeats (/etc/cyrus is every
// slot's parent).
func dedupDirs(dirs []Dir) []Dir {
	sort.SliceStable(dirs, func(i, j int) bool { return dirs[i].Path < dirs[j].Path })
	out := dirs[:0]
	for _, d := range dirs {
		if len(out) > 0 && out[len(out)-1].Path == d.Path {
			continue
		}
		out = append(out, d)
	}
	return out
}

// slotFiles renders the files of slot s, each written into scratch and
// then copied out at its size: a buffer that grew holds up to twice its
// file, and the tree of 10,000 slots is held whole.
func slotFiles(scratch *bytes.Buffer, l *layout.Layout, s *layout.Slot) []File {
	p := hostpath.Of(s.Name, s.Meta)
	content := func(write func(b *bytes.Buffer)) []byte {
		scratch.Reset()
		write(scratch)
		return bytes.Clone(scratch.Bytes())
	}
	var secrets []string
	imapd := content(func(b *bytes.Buffer) { secrets = imapdConf(b, l, s) })
	files := []File{
		{Path: p.IMAPDConf, Mode: 0o640, Owner: "root", Group: "mail", Content: imapd, Kind: IMAPDConf, Secrets: secrets},
		{Path: p.MasterConf, Mode: 0o644, Owner: "root", Group: "root", Content: content(func(b *bytes.Buffer) { cyrusConf(b, l, s, layout.Master) }), Kind: CyrusConf},
		{Path: p.InitScript, Mode: 0o755, Owner: "root", Group: "root", Content: content(func(b *bytes.Buffer) { initScript(b, l, s) }), Kind: InitScript},
		{Path: p.Unit, Mode: 0o644, Owner: "root", Group: "root", Content: content(func(b *bytes.Buffer) { unit(b, l, s) }), Kind: Unit},
	}
	if s.Store != "" {
		files = append(files, File{Path: p.ReplicaConf, Mode: 0o644, Owner: "root", Group: "root", Content: content(func(b *bytes.Buffer) { cyrusConf(b, l, s, layout.Replica) }), Kind: CyrusConf})
	}
	for i := range files {
		files[i].Slot = s.Name
		sum := sha256.Sum256(files[i].Content)
		files[i].SHA256 = hex.EncodeToString(sum[:])
	}
	return files
}

// peers returns the other slots of s's store, in store order: the
// replication channels of s when it is master.
func peers(l *layout.Layout, s *layout.Slot) []*layout.Slot {
	st := l.Stores[s.Store]
	if st == nil {
		return nil
	}
	var out []*layout.Slot
	for _, name := range st.Slots() {
		if name != s.Name {
			out = append(out, l.Slots[name])
		}
	}
	return out
}

func header(b *bytes.Buffer, comment, what string) {
	b.WriteString(comment + " " + what + "\n")
	b.WriteString(comment + " Generated by cyrplan from the layout. Do not edit: a change made here\n")
	b.WriteString(comment + " is reported as drift and overwritten by the next apply.\n")
}
