package layout

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/schema"
)

// plainLayouts are valid layouts of plain data, each a set of files
// (name -> source after the package clause), that exercise what
// readPlain reads: merged entries, literal forms, empty structs.
var plainLayouts = map[string]map[string]string{
	"small fleet": {"fleet.cue": smallFleet + `
hosts: imap4: {interface: "bond0", ssh: {user: "admin", port: 2222}}
slots: {
	slot101: {meta: "/srv/meta/1", data: "/srv/data/1", ports: {imap: 1143, sync: 2005}}
	slot499: {}
}
stores: s1: {
	master: "slot101"
	replicas: ["slot201", "slot301"]
	ip: {master: "10.0.1.1", replica: "fd00::1"}
	imapd: {timeout: 30, imap_allowplaintext: true, sasl_mech_list: "PLAIN"}
}
imapd: {admins: " cyrus ", sieve_maxscripts: 5}
replication: password: "repl-secret"
secrets: other: env: "OTHER_PASS"
ports: imap: 10000
`},
	"merged across files": {
		"a.cue": smallFleet + `
hosts: imap5: number: 5
stores: s1: {master: "slot101", replicas: ["slot201"]}
stores: s1: ip: master: "10.0.1.1"
imapd: admins: "cyrus"
`,
		"b.cue": `
hosts: imap5: address: "10.0.0.5"
hosts: imap5: {number: 5, ssh: port: 2222}
stores: s1: {replicas: ["slot201"], imapd: timeout: 30}
stores: s1: imapd: timeout: 30
imapd: admins: "cyrus"
`,
	},
	"literal forms": {"fleet.cue": `
// A comment.
"domain": "internal" // another
cyrus: "3.6.1": {prefix: #"/usr/lib/cyrus"#, version: "3.6.1"}
cyrus: "3.6.1-x": prefix: "/usr/\u006cib/cyrus-x"
defaultCyrus: "3.6.1"
hosts: {
	imap1: {number: 1_0, address: "10.0.0.1"}
	imap2: {"number": 0x10, address: "10.0.0.2"}
	imap3: {number: 3, address: "fd00::3", ssh: port: 1K}
}
slots: slot1001: {}
secrets: {}
stores: {}
imapd: {
	admins: """
		cyrus
		"""
	timeout: -1
	allowplaintext: false
	duplicatesuppression: true
	"sasl_mech_list": "PLAIN"
}
failover: {maxPerHost: 2}
`},
}

// notPlainLayouts are valid layouts that only CUE can evaluate: each
// replaces the domain of smallFleet, or adds a line to it.
var notPlainLayouts = map[string]string{
	"reference":       `domain: _d, _d: "internal"`,
	"let":             `let d = "internal"` + "\n" + `domain: d`,
	"comprehension":   `for n in [1] { hosts: "imap\(n+4)": {number: n+4, address: "10.0.0.9"} }`,
	"interpolation":   `domain: "inter\("nal")"`,
	"definition":      `#D: "internal"` + "\n" + `domain: #D`,
	"float":           `imapd: popminpoll: 2.0`,
	"null":            `imapd: popminpoll: null`,
	"bytes":           `imapd: admins: 'cyrus'`,
	"list option":     `imapd: admins: ["cyrus"]`,
	"struct option":   `imapd: admins: {a: "cyrus"}`,
	"huge integer":    `imapd: timeout: 99999999999999999999`,
	"plus":            `imapd: timeout: +1`,
	"parentheses":     `imapd: timeout: (1)`,
	"disjunction":     `domain: *"internal" | string`,
	"conjunction":     `domain: string & "internal"`,
	"embedding":       `{ domain: "internal" }`,
	"optional field":  `failover: maxPerHost?: 1`,
	"required field":  `domain!: "internal"`,
	"alias":           `D=domain: "internal"` + "\n" + `replication: authname: D`,
	"attribute":       `domain: "internal" @tag(x)`,
	"non-ASCII label": `secrets: "gehe\u0301im": {}`,
	"ellipsis":        `secrets: {...}`,
}

// cueLoad evaluates a layout with CUE as Load does, and returns its
// files, the schema (#Layout) and the operator's value alone and
// unified with the schema; ok is false if the layout is not valid.
func cueLoad(t testing.TB, fsys fs.FS) (files []*ast.File, def, user, val cue.Value, ok bool) {
	t.Helper()
	src, err := schema.FS.ReadFile(schema.File)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cuecontext.New()
	def = ctx.CompileBytes(src, cue.Filename(schemaFile)).LookupPath(cue.ParsePath("#Layout"))
	insts := load.Instances([]string{"."}, &load.Config{Dir: "/", FS: fsys, Package: "layout"})
	if len(insts) != 1 || insts[0].Err != nil {
		return nil, def, user, val, false
	}
	user = ctx.BuildInstance(insts[0])
	val = def.Unify(user)
	return insts[0].Files, def, user, val, user.Err() == nil && val.Validate(cue.Concrete(true)) == nil
}

func layoutFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, src := range files {
		fsys[name] = &fstest.MapFile{Data: []byte("package layout\n\n" + src)}
	}
	return fsys
}

// comparePlain checks that readPlain reads a valid layout of plain
// data as CUE decodes it, and finds the fields the operator wrote
// where CUE does. It returns whether the layout is valid and plain.
func comparePlain(t *testing.T, fsys fs.FS) bool {
	t.Helper()
	files, def, user, val, ok := cueLoad(t, fsys)
	if !ok {
		return false
	}
	var fromSyntax rawLayout
	w, ok := readPlain(files, newDefaults(def), &fromSyntax)
	if !ok {
		return false
	}
	var fromCUE rawLayout
	if bad := decode(val, true, &fromCUE); len(bad) > 0 {
		t.Fatalf("CUE does not decode the layout: %q", bad)
	}
	a, b := reflect.ValueOf(&fromSyntax).Elem(), reflect.ValueOf(&fromCUE).Elem()
	nilEmpty(a)
	nilEmpty(b)
	if !reflect.DeepEqual(fromSyntax, fromCUE) {
		t.Errorf("readPlain reads\n%#v\nCUE decodes\n%#v", fromSyntax, fromCUE)
	}
	got, want := map[string]bool{}, map[string]bool{}
	flatten(w, nil, got)
	userPaths(user, nil, want)
	for p := range want {
		if !got[p] {
			t.Errorf("readPlain misses the field %s", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("readPlain finds a field %s that CUE does not", p)
		}
	}
	return true
}

// nilEmpty sets the empty maps in v to nil: CUE decodes a struct the
// schema has as an empty map, readPlain leaves it out.
func nilEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			nilEmpty(v.Field(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		it := v.MapRange()
		for it.Next() {
			e := reflect.New(it.Value().Type()).Elem()
			e.Set(it.Value())
			nilEmpty(e)
			v.SetMapIndex(it.Key(), e)
		}
	}
}

func flatten(w written, p []string, out map[string]bool) {
	for name, sub := range w {
		q := append(slices.Clip(p), name)
		out[strings.Join(q, "\x00")] = true
		flatten(sub, q, out)
	}
}

// userPaths records the path of every field and list element of v.
func userPaths(v cue.Value, p []string, out map[string]bool) {
	if len(p) > 0 {
		out[strings.Join(p, "\x00")] = true
	}
	if it, err := v.Fields(); err == nil {
		for it.Next() {
			userPaths(it.Value(), append(slices.Clip(p), it.Selector().Unquoted()), out)
		}
	} else if it, err := v.List(); err == nil {
		for i := 0; it.Next(); i++ {
			userPaths(it.Value(), append(slices.Clip(p), strconv.Itoa(i)), out)
		}
	}
}

// TestReadPlain checks readPlain against CUE on layouts of plain data,
// and that it leaves all else to CUE.
func TestReadPlain(t *testing.T) {
	example := fstest.MapFS{}
	for _, name := range []string{"fleet.cue", "stores.cue"} {
		data, err := os.ReadFile(filepath.Join(exampleDir, name))
		if err != nil {
			t.Fatal(err)
		}
		example[name] = &fstest.MapFile{Data: data}
	}
	fleet, err := fleetgen.Generate(fleetgen.Options{Hosts: 10, SlotsPerHost: 10})
	if err != nil {
		t.Fatal(err)
	}
	generated := fstest.MapFS{}
	for name, data := range fleet {
		generated[name] = &fstest.MapFile{Data: data}
	}
	for name, fsys := range map[string]fs.FS{"example": example, "generated": generated} {
		t.Run(name, func(t *testing.T) {
			if !comparePlain(t, fsys) {
				t.Error("not valid plain data")
			}
		})
	}
	for name, files := range plainLayouts {
		t.Run(name, func(t *testing.T) {
			if !comparePlain(t, layoutFS(files)) {
				t.Error("not valid plain data")
			}
		})
	}
	for name, src := range notPlainLayouts {
		t.Run(name, func(t *testing.T) {
			fleet := strings.Replace(smallFleet, `domain:       "internal"`, "", 1)
			if !strings.Contains(src, "domain") {
				fleet = smallFleet
			}
			fsys := layoutFS(map[string]string{"fleet.cue": fleet + "\n" + src + "\n"})
			if _, _, _, _, ok := cueLoad(t, fsys); !ok {
				t.Fatal("CUE finds the layout invalid")
			}
			if comparePlain(t, fsys) {
				t.Error("readPlain reads it")
			}
		})
	}
}

// TestLoadPlain loads a generated fleet as plain data and, with a
// hidden field added, as CUE evaluates it: the layouts are the same.
func TestLoadPlain(t *testing.T) {
	fleet, err := fleetgen.Generate(fleetgen.Options{Hosts: 10, SlotsPerHost: 10})
	if err != nil {
		t.Fatal(err)
	}
	plain, evaluated := t.TempDir(), t.TempDir()
	for name, data := range fleet {
		writeFile(t, filepath.Join(plain, name), data)
		writeFile(t, filepath.Join(evaluated, name), data)
	}
	writeFile(t, filepath.Join(evaluated, "hidden.cue"), []byte("package layout\n\n_hidden: true\n"))
	if files, def, _, _, ok := cueLoad(t, os.DirFS(evaluated)); !ok {
		t.Fatal("the fleet with a hidden field is not valid")
	} else if _, ok := readPlain(files, newDefaults(def), new(rawLayout)); ok {
		t.Fatal("readPlain reads a hidden field")
	}
	a, err := Load(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(evaluated)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("the fleet loads differently as plain data")
	}
}

// TestCheckPlainInvalid loads a layout of plain data that CUE rejects
// and that the checks cannot take: CUE's errors are reported.
func TestCheckPlainInvalid(t *testing.T) {
	dir := writeLayout(t, map[string]string{"fleet.cue": smallFleet + `
stores: s1: {master: "slot101", replicas: [], ip: master: "10.0.1.1"}
failover: maxPerHost: 1
`})
	_, err := Load(dir)
	want := filepath.Join(dir, "fleet.cue") + ":14:33: stores.s1.replicas: the list is empty; it needs at least 1 element"
	if err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %s", err, want)
	}
}

// FuzzPlain checks that whatever readPlain reads of a valid layout is
// what CUE decodes.
//
//	go test -run '^$' -fuzz FuzzPlain -fuzztime 30s ./internal/layout
func FuzzPlain(f *testing.F) {
	for _, files := range plainLayouts {
		names := slices.Sorted(maps.Keys(files))
		var rest strings.Builder
		for _, name := range names[1:] {
			rest.WriteString(files[name])
		}
		f.Add([]byte("package layout\n\n"+files[names[0]]), []byte("package layout\n\n"+rest.String()))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		comparePlain(t, fstest.MapFS{"a.cue": {Data: a}, "b.cue": {Data: b}})
	})
}
