package layout_test

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/schema"
)

// injectTemplate is a valid layout in which every string the schema
// accepts is a placeholder @name@: the injection corpus sets one of them
// to a hostile value and the others to their good values.
const injectTemplate = `package layout

domain: @domain@
cyrus: @build@: {prefix: @prefix@, version: @version@}
defaultCyrus: @defaultCyrus@
hosts: {
	@host@: {number: 1, address: @address@, interface: @interface@, ssh: user: @sshUser@}
	imap2: {number: 2, address: "10.0.0.2"}
}
slots: @slot@: {meta: @meta@, data: @data@}
stores: @store@: {
	master:   @master@
	replicas: [@replica@]
	cyrus:    @pin@
	ip: {master: @ipMaster@, replica: @ipReplica@}
	imapd: {@storeKey@: "PLAIN", postmaster: @storeValue@}
}
imapd: {@key@: "auxprop", plaintextloginalert: @value@}
replication: {authname: @authname@, password: @password@}
secrets: @secret@: env: @env@
`

// injectField is one string of the layout: where it is in the schema,
// its placeholder, its good value, and the hostile values built from it.
type injectField struct {
	schema string // the schema path: hosts.*.address; hosts.* is a label
	name   string // the placeholder
	good   string
	label  bool // a field name: its error is at the label
	// accepts says which hostile values are legitimately accepted
	// (text in an imapd.conf value); nil: none.
	accepts func(v string) bool
}

var injectFields = []injectField{
	{schema: "domain", name: "domain", good: "internal"},
	{schema: "cyrus.*", name: "build", good: "3.6.1", label: true},
	{schema: "cyrus.*.prefix", name: "prefix", good: "/usr/lib/cyrus"},
	{schema: "cyrus.*.version", name: "version", good: "3.6.1"},
	{schema: "defaultCyrus", name: "defaultCyrus", good: "3.6.1"},
	{schema: "hosts.*", name: "host", good: "imap1", label: true},
	{schema: "hosts.*.address", name: "address", good: "10.0.0.1"},
	{schema: "hosts.*.interface", name: "interface", good: "eth0"},
	{schema: "hosts.*.ssh.user", name: "sshUser", good: "root"},
	{schema: "slots.*", name: "slot", good: "slot105", label: true},
	{schema: "slots.*.meta", name: "meta", good: "/srv/meta5"},
	{schema: "slots.*.data", name: "data", good: "/srv/data5"},
	{schema: "stores.*", name: "store", good: "store1", label: true},
	{schema: "stores.*.master", name: "master", good: "slot101"},
	{schema: "stores.*.replicas[*]", name: "replica", good: "slot201"},
	{schema: "stores.*.cyrus", name: "pin", good: "3.6.1"},
	{schema: "stores.*.ip.master", name: "ipMaster", good: "10.0.1.1"},
	{schema: "stores.*.ip.replica", name: "ipReplica", good: "fd00::2"},
	{schema: "stores.*.imapd.*", name: "storeKey", good: "sasl_mech_list", label: true},
	{schema: "stores.*.imapd.*", name: "storeValue", good: "postmaster", accepts: isText},
	{schema: "imapd.*", name: "key", good: "sasl_pwcheck_method", label: true},
	{schema: "imapd.*", name: "value", good: "Welcome", accepts: isText},
	{schema: "replication.authname", name: "authname", good: "repluser"},
	{schema: "replication.password", name: "password", good: "replication"},
	{schema: "secrets.*", name: "secret", good: "replication", label: true},
	{schema: "secrets.*.env", name: "env", good: "REPL_PASSWORD"},
}

// isText says whether v is a legitimate imapd.conf string value: text
// without control characters, not empty and not ending in \.
func isText(v string) bool {
	t := strings.TrimSpace(v)
	return t != "" && !strings.HasSuffix(t, `\`) && !strings.ContainsFunc(v, unicode.IsControl)
}

// payloads are what an attacker (or a slip) puts into a value: shell
// syntax, quotes, line breaks and other control characters, IPv6 zones.
var payloads = []string{
	";touch /tmp/PWNED", "$(touch /tmp/PWNED)", "`touch /tmp/PWNED`", "'", `"`, "\n", "\r",
	"\nconfigdirectory: /tmp", "\t", "\x00", "\x7f", "\u0085", `\`, " ", "|id", "&", ">x", "<x", "*", "?", "~",
	"#", "{a,b}", "%eth0", "%x;touch /tmp/PWNED;#", ":/tmp", "/../..", "\u2028",
}

// hostile returns the values to try for f: each payload alone, after
// the good value and inside it.
func (f injectField) hostile() []string {
	var out []string
	for _, p := range payloads {
		out = append(out, p, f.good+p, f.good[:len(f.good)/2]+p+f.good[len(f.good)/2:])
	}
	out = append(out, "fe80::1%eth0", "fe80::11%x;touch /tmp/PWNED;#", "")
	slices.Sort(out)
	return slices.Compact(out)
}

// cueString writes s as a CUE string literal: every byte that is not
// printable ASCII escaped, and no interpolation.
func cueString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= ' ' && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var placeholderRE = regexp.MustCompile(`@[A-Za-z]+@`)

// injectLayout returns the layout with field set to value, and the line
// and column of that value.
func injectLayout(field, value string) (src string, line, col int) {
	var b strings.Builder
	rest := injectTemplate
	for {
		loc := placeholderRE.FindStringIndex(rest)
		if loc == nil {
			b.WriteString(rest)
			return b.String(), line, col
		}
		b.WriteString(rest[:loc[0]])
		name := rest[loc[0]+1 : loc[1]-1]
		v := goodValue(name)
		if name == field {
			v = value
			before := b.String()
			line = strings.Count(before, "\n") + 1
			col = len(before) - strings.LastIndexByte(before, '\n')
		}
		b.WriteString(cueString(v))
		rest = rest[loc[1]:]
	}
}

func goodValue(name string) string {
	for _, f := range injectFields {
		if f.name == name {
			return f.good
		}
	}
	panic("no field " + name)
}

func loadInjected(src string) (*layout.Layout, error) {
	return layout.LoadFS(fstest.MapFS{"layout.cue": {Data: []byte(src)}}, "inject")
}

// goodTree loads and renders the template with every good value: the
// corpus starts from a layout that is valid and renders safely.
func goodTree(t *testing.T) *render.Tree {
	t.Helper()
	src, _, _ := injectLayout("", "")
	l, err := loadInjected(src)
	if err != nil {
		t.Fatalf("the injection template does not load:\n%v\n%s", err, src)
	}
	tree := render.Render(l)
	if msg := checkTree(tree); msg != "" {
		t.Fatalf("the injection template renders unsafely: %s", msg)
	}
	return tree
}

// TestInjectGood checks the template's tree, its init scripts with sh -n.
func TestInjectGood(t *testing.T) {
	tree := goodTree(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to check the init scripts with")
	}
	n := 0
	for _, host := range tree.HostNames() {
		for _, file := range tree.Hosts[host].Files {
			if file.Kind == render.InitScript {
				checkSyntax(t, sh, host+":"+file.Path, string(file.Content))
				n++
			}
		}
	}
	if n < 3 {
		t.Errorf("checked %d init scripts, want one per slot (3)", n)
	}
}

// TestInjection sets every string of the layout to every hostile value:
// each is rejected with an error at that value, or, where a value may
// legitimately hold it (text in an imapd.conf option value), renders
// safely: every imapd.conf line stays an option line, the value is one
// option's value, and no other file (init scripts, units, cyrus.conf)
// changes, so none holds it.
func TestInjection(t *testing.T) {
	good := goodTree(t)
	for _, f := range injectFields {
		t.Run(f.name, func(t *testing.T) {
			accepted := 0
			defer func() {
				if f.accepts != nil && accepted == 0 {
					t.Errorf("%s: no hostile value was accepted, so none was checked in the rendered tree", f.schema)
				}
			}()
			for _, v := range f.hostile() {
				src, line, col := injectLayout(f.name, v)
				l, err := loadInjected(src)
				if err == nil {
					if f.accepts == nil || !f.accepts(v) {
						t.Errorf("%s %s: accepted", f.schema, cueString(v))
						continue
					}
					accepted++
					checkAccepted(t, good, l, f, v)
					continue
				}
				if f.accepts != nil && f.accepts(v) {
					t.Errorf("%s %s: rejected, but it is text that imapd.conf can hold: %v", f.schema, cueString(v), err)
				}
				if !errorAt(err, line, col) {
					t.Errorf("%s %s: no error at inject/layout.cue:%d:%d:\n%v", f.schema, cueString(v), line, col, errorList(err))
				}
			}
		})
	}
}

func errorAt(err error, line, col int) bool {
	var errs layout.Errors
	if !errors.As(err, &errs) {
		return false
	}
	for _, e := range errs {
		if e.Pos.Filename() == "inject/layout.cue" && e.Pos.Line() == line && e.Pos.Column() == col {
			return true
		}
	}
	return false
}

func errorList(err error) string {
	var errs layout.Errors
	if errors.As(err, &errs) {
		return errs.Format("")
	}
	return err.Error()
}

// checkAccepted checks the rendered tree of a layout that took the
// hostile value v in field f against the tree of the good layout.
func checkAccepted(t *testing.T, good *render.Tree, l *layout.Layout, f injectField, v string) {
	t.Helper()
	tree := render.Render(l)
	if msg := checkTree(tree); msg != "" {
		t.Errorf("%s %s: renders unsafely: %s", f.schema, cueString(v), msg)
		return
	}
	line := ": " + strings.TrimSpace(v) + "\n"
	for _, host := range tree.HostNames() {
		files := tree.Hosts[host].Files
		for i, file := range files {
			before := good.Hosts[host].Files[i]
			switch {
			case file.Path != before.Path:
				t.Fatalf("%s %s: %s renders %s where the good layout has %s", f.schema, cueString(v), host, file.Path, before.Path)
			case file.Kind == render.IMAPDConf:
				if !bytes.Equal(file.Content, before.Content) && !strings.Contains(string(file.Content), line) {
					t.Errorf("%s %s: %s:%s changes, but has no line ending in %q", f.schema, cueString(v), host, file.Path, line)
				}
			case !bytes.Equal(file.Content, before.Content):
				t.Errorf("%s %s: changes %s:%s", f.schema, cueString(v), host, file.Path)
			}
		}
	}
}

func checkSyntax(t *testing.T, sh, name, script string) {
	t.Helper()
	cmd := exec.Command(sh, "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", name, err, out)
	}
}

// TestInjectionCoversTheSchema checks that the corpus has a field for
// every string of the schema: a field added to the schema must be added
// to the corpus too.
func TestInjectionCoversTheSchema(t *testing.T) {
	src, err := schema.FS.ReadFile(schema.File)
	if err != nil {
		t.Fatal(err)
	}
	v := cuecontext.New().CompileBytes(src).LookupPath(cue.ParsePath("#Layout"))
	strs := map[string]bool{}
	stringFields(v, "", strs)
	if len(strs) < 20 {
		t.Fatalf("found %d string fields in the schema, want at least 20: %v", len(strs), strs)
	}
	covered := map[string]bool{}
	for _, f := range injectFields {
		covered[f.schema] = true
	}
	for p := range strs {
		if !covered[p] {
			t.Errorf("the schema's string %s has no field in injectFields", p)
		}
	}
	for p := range covered {
		if !strs[p] {
			t.Errorf("injectFields has %s, which is no string of the schema", p)
		}
	}
}

// stringFields adds the paths of the strings below v to out: field names
// of maps (hosts.*) and values that may be strings (hosts.*.address).
func stringFields(v cue.Value, path string, out map[string]bool) {
	if elem := v.LookupPath(cue.MakePath(cue.AnyString)); elem.Exists() {
		out[path+".*"] = true
		stringFields(elem, path+".*", out)
	}
	switch k := v.IncompleteKind(); {
	case k == cue.StructKind:
		it, _ := v.Fields(cue.Optional(true))
		for it.Next() {
			name := it.Selector().Unquoted()
			if path != "" {
				name = path + "." + name
			}
			stringFields(it.Value(), name, out)
		}
	case k == cue.ListKind:
		stringFields(v.LookupPath(cue.MakePath(cue.AnyIndex)), path+"[*]", out)
	case k&cue.StringKind != 0:
		out[path] = true
	}
}

// TestCueString checks the literal writer the corpus relies on.
func TestCueString(t *testing.T) {
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "\n\r\t\x00\x7f", "\u0085\u2028", `\(interpolation)`, "é"} {
		src := "x: " + cueString(s)
		v := cuecontext.New().CompileString(src)
		got, err := v.LookupPath(cue.ParsePath("x")).String()
		if err != nil || got != s {
			t.Errorf("%s reads back as %q, %v; want %q", src, got, err, s)
		}
		if !utf8.ValidString(src) || strings.ContainsFunc(src, func(r rune) bool { return r < ' ' || r >= 0x7f }) {
			t.Errorf("%s is not printable ASCII", strconv.Quote(src))
		}
	}
}
