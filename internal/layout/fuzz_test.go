package layout_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
)

// FuzzLoad loads a layout of two files, fleet.cue and stores.cue: it
// never panics, every error is one line of text, and a layout that
// loads renders a tree whose files hold no control character, whose
// imapd.conf lines are option lines and whose init scripts assign no
// value the shell would expand.
//
//	go test -run '^$' -fuzz FuzzLoad -fuzztime 10s ./internal/layout
func FuzzLoad(f *testing.F) {
	fleet, err := os.ReadFile(filepath.Join("..", "..", "layout", "fleet.cue"))
	if err != nil {
		f.Fatal(err)
	}
	stores, err := os.ReadFile(filepath.Join("..", "..", "layout", "stores.cue"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fleet, stores)
	for _, hostile := range []string{
		`stores: store99: {master: "slot309", replicas: ["slot409"], ip: master: "fe80::11%x;touch /tmp/PWNED;#"}`,
		`hosts: imap10: {number: 10, address: "fe80::3%eth0"}`,
		`hosts: imap10: {number: 10, address: "10.0.0.10", interface: "eth0\nreboot"}`,
		`hosts: imap10: {number: 10, address: "10.0.0.10", ssh: user: "root$(id)"}`,
		`imapd: "sasl_mech_list\nconfigdirectory": "/tmp"`,
		`imapd: "sasl_x\r": "y"`,
		`imapd: plaintextloginalert: "it's \"quoted\" $(id) ` + "`id`" + `"`,
		`imapd: postmaster: "cyrus\\"`,
		`imapd: quota_db: "nosuchdb"`,
		`slots: slot309: {meta: "/tmp", data: "/"}`,
		`slots: slot309: meta: "/mnt/meta9\r"`,
		`cyrus: "3.6.2": prefix: "/usr/lib/cyrus(1)"`,
		`replication: authname: "repl;user"`,
	} {
		f.Add(fleet, []byte(string(stores)+"\n"+hostile+"\n"))
	}
	f.Add([]byte(strings.Replace(string(fleet), `domain: "internal"`, `domain: "internal\n"`, 1)), stores)
	f.Add(fleet, []byte("stores: {}\n")) // no package clause
	f.Add(fleet, []byte("package other\n"))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("package layout\n{{{{"), []byte("\xff\xfe"))

	f.Fuzz(func(t *testing.T, fleet, stores []byte) {
		fsys := fstest.MapFS{"fleet.cue": {Data: fleet}, "stores.cue": {Data: stores}}
		l, err := layout.LoadFS(fsys, "fuzz")
		if err != nil {
			checkErrors(t, err)
			return
		}
		if msg := checkTree(render.Render(l)); msg != "" {
			t.Fatalf("the layout loads, but renders unsafely: %s", msg)
		}
	})
}

// checkErrors checks that every error of a layout is one line of text.
func checkErrors(t *testing.T, err error) {
	var errs layout.Errors
	if !errors.As(err, &errs) {
		return
	}
	for _, line := range strings.Split(strings.TrimSuffix(errs.Format(""), "\n"), "\n") {
		if strings.ContainsFunc(line, unicode.IsControl) {
			t.Fatalf("an error holds a control character: %q", line)
		}
	}
	if n := strings.Count(errs.Format(""), "\n"); n != len(errs) {
		t.Fatalf("%d errors format as %d lines", len(errs), n)
	}
}

// FuzzValue sets one string of the injection template (field picks
// which) to a fuzzed value: the layout is rejected, or it renders a safe
// tree.
//
//	go test -run '^$' -fuzz FuzzValue -fuzztime 10s ./internal/layout
func FuzzValue(f *testing.F) {
	for i, field := range injectFields {
		for _, v := range []string{field.good, field.good + ";touch /tmp/PWNED", field.good + "\n"} {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, field uint8, value string) {
		name := injectFields[int(field)%len(injectFields)].name
		src, _, _ := injectLayout(name, value)
		l, err := loadInjected(src)
		if err != nil {
			checkErrors(t, err)
			return
		}
		if msg := checkTree(render.Render(l)); msg != "" {
			t.Fatalf("%s %s: loads, but renders unsafely: %s", name, cueString(value), msg)
		}
	})
}
