package local_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyrplan/cyrplan/internal/transport"
	"github.com/cyrplan/cyrplan/internal/transport/local"
	"github.com/cyrplan/cyrplan/internal/transport/transporttest"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) transporttest.Fixture {
		root := t.TempDir()
		dir := filepath.Join(root, "imap6", "work")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return transporttest.Fixture{Host: local.New(root, "imap6"), Dir: "/work", LocalDir: dir}
	})
}

// TestLayout checks that host paths land under ROOT/NAME.
func TestLayout(t *testing.T) {
	root := t.TempDir()
	h := local.New(root, "imap6")
	ctx := t.Context()
	if err := h.MkdirAll(ctx, "/etc/cyrus", 0o755, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(ctx, "/etc/cyrus/imapd.conf", []byte("x\n"), 0o640, transport.Owner{User: "cyrus", Group: "mail"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "imap6", "etc", "cyrus", "imapd.conf"))
	if err != nil || string(got) != "x\n" {
		t.Errorf("ROOT/imap6/etc/cyrus/imapd.conf = %q, %v; want %q", got, err, "x\n")
	}
}

// TestMissingHostDir checks that a host without a directory reads as
// empty and gets one on the first write.
func TestMissingHostDir(t *testing.T) {
	root := t.TempDir()
	h := local.New(root, "imap6")
	ctx := t.Context()
	if _, err := h.ReadFile(ctx, "/etc/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile = %v; want fs.ErrNotExist", err)
	}
	if err := h.Remove(ctx, "/etc/x"); err != nil {
		t.Errorf("Remove = %v; want nil", err)
	}
	if err := h.WriteFile(ctx, "/x", []byte("x"), 0o644, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "imap6", "x")); err != nil {
		t.Error(err)
	}
}

// TestEscape checks that no path reaches outside the host directory.
func TestEscape(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "imap6"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "imap6", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../", filepath.Join(root, "imap6", "up")); err != nil {
		t.Fatal(err)
	}
	h := local.New(root, "imap6")
	ctx := t.Context()
	for _, p := range []string{"/../escaped", "/etc/../../escaped", "/link/escaped", "/up/escaped"} {
		err := h.WriteFile(ctx, p, []byte("x"), 0o644, transport.Owner{})
		if err == nil {
			t.Errorf("WriteFile(%s) succeeded", p)
			continue
		}
		if !strings.Contains(err.Error(), "imap6") || !strings.Contains(err.Error(), p) {
			t.Errorf("WriteFile(%s) error %q does not name the host and path", p, err)
		}
	}
	for _, d := range []string{root, outside} {
		if _, err := os.Stat(filepath.Join(d, "escaped")); err == nil {
			t.Errorf("a file escaped to %s", d)
		}
	}
	// ".." that stays inside is fine, resolved as the kernel does:
	// "/a/.." needs /a.
	if err := h.WriteFile(ctx, "/a/../b", []byte("x"), 0o644, transport.Owner{}); err == nil {
		t.Error("WriteFile(/a/../b) succeeded though /a does not exist")
	}
	if err := h.MkdirAll(ctx, "/a", 0o755, transport.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(ctx, "/a/../b", []byte("x"), 0o644, transport.Owner{}); err != nil {
		t.Error(err)
	}
}
