package local_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
)

// benchHost is what cyrplan manages on one host of fleetgen's 10,000-slot
// fleet (125 hosts x 80 slots): five files and one role per slot, eight
// directories per slot, one manifest.
type benchHost struct {
	files, roles, dirs []string
}

func newBenchHost(slots int) benchHost {
	var h benchHost
	for i := range slots {
		s := fmt.Sprintf("slot%d", 101+i)
		for _, f := range []string{"imapd.conf", "cyrus-master.conf", "cyrus-replica.conf"} {
			h.files = append(h.files, "/etc/cyrus/"+s+"/"+f)
		}
		h.files = append(h.files, "/etc/init.d/cyrus-"+s, "/etc/systemd/system/cyrus-"+s+".service")
		h.roles = append(h.roles, "/var/lib/cyrplan/roles/"+s)
		meta, data := fmt.Sprintf("/mnt/meta%d", 101+i), fmt.Sprintf("/mnt/data%d", 101+i)
		h.dirs = append(h.dirs, "/etc/cyrus/"+s, meta, meta+"/conf", meta+"/conf/db", meta+"/conf/socket", meta+"/sieve", data, data+"/spool")
	}
	h.files = append(h.files, "/var/lib/cyrplan/manifest.json")
	return h
}

// parentDir is the directory holding the host path p.
func parentDir(p string) string { return p[:strings.LastIndexByte(p, '/')] }

// write does what a first apply does on a host: each directory, then
// the parent of each file once and every file in one WriteFiles, the
// roles in another, then Sync.
func (bh benchHost) write(ctx context.Context, h transport.Host, content []byte) error {
	made := map[string]bool{}
	for _, d := range bh.dirs {
		if err := h.MkdirAll(ctx, d, 0o750, transport.Owner{}); err != nil {
			return err
		}
		made[d] = true
	}
	for _, batch := range [][]string{bh.files, bh.roles} {
		var files []transport.File
		for _, f := range batch {
			if dir := parentDir(f); !made[dir] {
				if err := h.MkdirAll(ctx, dir, 0o755, transport.Owner{}); err != nil {
					return err
				}
				made[dir] = true
			}
			files = append(files, transport.File{Path: f, Data: content, Mode: 0o640})
		}
		if err := h.WriteFiles(ctx, files); err != nil {
			return err
		}
	}
	return h.Sync(ctx)
}

// observe reads the host as a no-change plan does (package onhost): one
// Inspect of every file, directory and role.
func (bh benchHost) observe(ctx context.Context, h transport.Host) error {
	_, err := h.Inspect(ctx, slices.Concat(bh.files, bh.dirs, bh.roles))
	return err
}

// BenchmarkObserve is the local transport's part of a no-change plan of
// one host of 80 slots (481 files, 640 directories, 80 roles).
func BenchmarkObserve(b *testing.B) {
	ctx := b.Context()
	bh := newBenchHost(80)
	root := b.TempDir()
	if err := bh.write(ctx, local.New(root, "imap1"), []byte(strings.Repeat("x", 1000)+"\n")); err != nil {
		b.Fatal(err)
	}
	h := local.New(root, "imap1")
	defer h.Close()
	for b.Loop() {
		if err := bh.observe(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(bh.files)), "µs/file")
}

// BenchmarkFirstApply is the local transport's part of a first apply of
// one host of 80 slots: every directory and file created, the files
// synced at once, then Sync.
func BenchmarkFirstApply(b *testing.B) {
	ctx := b.Context()
	bh := newBenchHost(80)
	root := b.TempDir()
	content := []byte(strings.Repeat("x", 1000) + "\n")
	i := 0
	for b.Loop() {
		i++
		h := local.New(root, fmt.Sprintf("imap%d", i))
		if err := bh.write(ctx, h, content); err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}
