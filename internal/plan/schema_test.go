package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/secret"
	"github.com/cyrplan/cyrplan/internal/state"
)

const schemaURL = "https://github.com/cyrplan/cyrplan/internal/plan/plan.schema.json"

// compileSchema compiles plan.schema.json, checking it against the
// draft 2020-12 meta-schema.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatalf("plan.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		t.Fatalf("plan.schema.json: %v", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		t.Fatalf("plan.schema.json: %v", err)
	}
	return sch
}

func validateJSON(sch *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func planJSON(t *testing.T, p *Plan) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// identify gives p the identity cyrplan plan gives a plan of the hosts
// under a directory (build leaves them empty, as diff does).
func identify(p *Plan) *Plan {
	p.ID = "20260102T030405Z-a1b2c3"
	p.Version = "v1.2.3"
	p.Commit = strings.Repeat("ab", 20)
	p.LayoutID = strings.Repeat("cd", 20)
	p.LayoutHash = state.Hash([]byte("layout"))
	p.Transport = Transport{Kind: "local", Root: "/srv/fleet"}
	return p
}

// TestSchemaPlans validates the JSON of plans of every shape against
// plan.schema.json: what plan --json prints and plan --out saves.
func TestSchemaPlans(t *testing.T) {
	sch := compileSchema(t)
	tests := []struct {
		name string
		plan func(t *testing.T) *Plan
		want func(t *testing.T, p *Plan) // that the plan has the shape it is for
	}{
		{"empty hosts", func(t *testing.T) *Plan {
			l := example(t)
			return identify(build(t, l, empty(render.Render(l))))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Starts == 0 || len(p.Hosts[0].Dirs) == 0 || len(p.Hosts[0].Roles) == 0 {
				t.Errorf("no starts, dirs or roles: %+v", p.Summary)
			}
		}},
		{"applied hosts, no changes", func(t *testing.T) *Plan {
			l := example(t)
			return identify(build(t, l, applied(render.Render(l))))
		}, func(t *testing.T, p *Plan) {
			if p.HasChanges() {
				t.Error("changes")
			}
		}},
		{"an option change", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			l.Stores["store23"].Imapd["quota_db"] = "skiplist"
			l.Imapd["lmtp_downcase_rcpt"] = "yes"
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Reloads == 0 || len(p.Hosts[3].Files[0].Options) == 0 {
				t.Errorf("no reloads or options: %+v", p.Summary)
			}
		}},
		{"a restart", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			l.Slots["slot608"].IMAPPort = 15000
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Restarts != 1 {
				t.Errorf("restarts %d", p.Summary.Restarts)
			}
		}},
		{"drift and a removal", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			h := obs["imap6"]
			f := h.Files["/etc/cyrus/slot608/imapd.conf"]
			f.Content = append(bytes.ReplaceAll(f.Content, []byte("admins: "), []byte("admins: mallory ")), "lmtp_over_quota_perm_failure: yes\n"...)
			f.SHA256 = state.Hash(f.Content)
			old := []byte("configdirectory: /var/lib/cyrus/slot699\n")
			h.Manifest.Files["/etc/cyrus/slot699/imapd.conf"] = state.ManifestFile{SHA256: state.Hash(old), Slot: "slot699", Kind: "imapd.conf"}
			h.Manifest.Files["/etc/init.d/cyrus-slot699"] = state.ManifestFile{SHA256: state.Hash([]byte("init")), Slot: "slot699", Kind: "init"}
			h.Manifest.Slots = append(h.Manifest.Slots, "slot699")
			h.Files["/etc/cyrus/slot699/imapd.conf"] = &state.File{Exists: true, Mode: 0o640, Content: old, SHA256: state.Hash(old)}
			h.Files["/etc/init.d/cyrus-slot699"] = &state.File{Exists: true, Mode: 0o755, Content: []byte("edited"), SHA256: state.Hash([]byte("edited"))}
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Stops != 1 || p.Summary.Drift != 2 {
				t.Errorf("stops %d, drift %d", p.Summary.Stops, p.Summary.Drift)
			}
		}},
		{"a removed slot stopped by its pidfile", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			h := obs["imap6"]
			h.Manifest.Files["/etc/cyrus/slot699/imapd.conf"] = state.ManifestFile{SHA256: state.Hash([]byte("x")), Slot: "slot699", Kind: "imapd.conf"}
			h.Manifest.Slots = append(h.Manifest.Slots, "slot699")
			h.Roles["slot699"] = layout.Replica
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if len(p.Actions) != 1 || !p.Actions[0].ByPIDFile {
				t.Errorf("actions %+v", p.Actions)
			}
		}},
		// The last slot of a host leaves the layout: the host's planned
		// manifest records no file and no slot.
		{"a host's last slot removed", func(t *testing.T) *Plan {
			l := example(t)
			l.Hosts["imap10"] = &layout.Host{Name: "imap10", Number: 10, Address: "10.0.0.10"}
			obs := applied(render.Render(l))
			h := obs["imap10"]
			old := []byte("configdirectory: /var/lib/cyrus/slot1001\n")
			h.Manifest.Files["/etc/cyrus/slot1001/imapd.conf"] = state.ManifestFile{SHA256: state.Hash(old), Slot: "slot1001", Kind: "imapd.conf"}
			h.Manifest.Slots = []string{"slot1001"}
			h.Files["/etc/cyrus/slot1001/imapd.conf"] = &state.File{Exists: true, Mode: 0o640, Content: old, SHA256: state.Hash(old)}
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			h := p.Hosts[slices.IndexFunc(p.Hosts, func(h *Host) bool { return h.Host == "imap10" })]
			if p.Summary.Stops != 1 || len(h.Files) != 1 || len(h.Manifest.Files) != 0 {
				t.Errorf("stops %d, files %d, manifest %v", p.Summary.Stops, len(h.Files), h.Manifest.Files)
			}
		}},
		{"an unreadable host", func(t *testing.T) *Plan {
			l := example(t)
			tree := render.Render(l)
			obs := empty(tree)
			delete(obs, "imap7")
			delete(obs, "imap8")
			sc, err := NewScope(l, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return identify(Build(Input{Layout: l, Tree: tree, Observed: obs, Scope: sc,
				Errors: map[string]error{"imap7": errors.New("imap7: ssh: connect to host 10.0.0.7 port 22: connection refused")}}))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Unreachable != 2 {
				t.Errorf("unreachable %d", p.Summary.Unreachable)
			}
		}},
		{"a target, over SSH", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			l.Imapd["allowplaintext"] = "yes"
			p := identify(build(t, l, obs, "store23"))
			p.Transport = Transport{Kind: "ssh"}
			return p
		}, func(t *testing.T, p *Plan) {
			if len(p.Targets) != 1 || p.Summary.Reloads != 2 {
				t.Errorf("targets %v, reloads %d", p.Targets, p.Summary.Reloads)
			}
		}},
		{"pending actions", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			obs["imap6"].Manifest.Pending = map[string]string{"slot608": "reload", "slot602": "start"}
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if len(p.Actions) != 2 {
				t.Errorf("actions %+v", p.Actions)
			}
		}},
		{"a secret change", func(t *testing.T) *Plan {
			l := example(t)
			tree := render.Render(l)
			obs := applied(tree)
			for _, h := range obs {
				for _, f := range tree.Hosts[h.Name].Files {
					h.Files[f.Path].Stale = f.Secrets
				}
			}
			sc, err := NewScope(l, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return identify(Build(Input{Layout: l, Tree: tree, Observed: obs, Scope: sc, Secrets: secret.Values{"replication": "new"}}))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Reloads == 0 || len(p.Hosts[0].Files[0].Secrets) == 0 {
				t.Errorf("reloads %d", p.Summary.Reloads)
			}
		}},
		{"modes changed by hand", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			obs["imap6"].Files["/etc/cyrus/slot608/imapd.conf"].Mode = 0o644
			for path, d := range obs["imap6"].Dirs {
				if strings.HasPrefix(path, "/etc/cyrus/") {
					d.Mode = 0o700
				}
			}
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			h := p.Hosts[slices.IndexFunc(p.Hosts, func(h *Host) bool { return h.Host == "imap6" })]
			if len(h.Files) != 1 || len(h.Dirs) == 0 || h.Dirs[0].Action != Update {
				t.Errorf("files %d, dirs %+v", len(h.Files), h.Dirs)
			}
		}},
		{"a missing build", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			obs["imap3"].Builds["/usr/cyrusnew"] = state.BuildMissing
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if len(p.Problems) != 1 {
				t.Errorf("problems %q", p.Problems)
			}
		}},
		// A hand edit that changes no option (a comment) is drift whose
		// imapd.conf update has no option change.
		{"a comment added by hand", func(t *testing.T) *Plan {
			l := example(t)
			obs := applied(render.Render(l))
			f := obs["imap6"].Files["/etc/cyrus/slot608/imapd.conf"]
			f.Content = append(append([]byte(nil), f.Content...), "# tuned by hand\n"...)
			f.SHA256 = state.Hash(f.Content)
			return identify(build(t, l, obs))
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Drift != 1 {
				t.Errorf("drift %d", p.Summary.Drift)
			}
		}},
		// diff: a plan of one layout against another, which reaches no host.
		{"diff of two layouts", func(t *testing.T) *Plan {
			base := example(t)
			head := example(t)
			head.Stores["store23"].Imapd["quota_db"] = "skiplist"
			tb, th := render.Render(base), render.Render(head)
			obs := map[string]*state.Host{}
			for _, h := range th.HostNames() {
				obs[h] = state.FromTree(tb, h)
			}
			sc, err := NewScope(head, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return Build(Input{Layout: head, Tree: th, Observed: obs, Scope: sc, Labels: [2]string{"main", "working tree"}, Version: "v1.2.3"})
		}, func(t *testing.T, p *Plan) {
			if p.Summary.Reloads != 2 {
				t.Errorf("reloads %d", p.Summary.Reloads)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.plan(t)
			tt.want(t, p)
			data := planJSON(t, p)
			if err := validateJSON(sch, data); err != nil {
				t.Errorf("the plan's JSON does not match plan.schema.json: %v", err)
			}
			// A saved plan read back and written again is the same document.
			q, err := Read(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if again := planJSON(t, q); !bytes.Equal(again, data) {
				t.Errorf("read and written again, the plan's JSON changes")
			}
		})
	}
}

// TestSchemaRejects: the schema is strict, so that the test above can
// fail. Each edit of a valid plan document must be refused.
func TestSchemaRejects(t *testing.T) {
	sch := compileSchema(t)
	l := example(t)
	obs := empty(render.Render(l))
	delete(obs, "imap9")
	valid := planJSON(t, identify(build(t, l, obs)))
	if err := validateJSON(sch, valid); err != nil {
		t.Fatalf("the document to edit is invalid: %v", err)
	}
	tests := []struct {
		name string
		edit func(p map[string]any)
	}{
		{"a mode as a number", func(p map[string]any) { file(p)["mode"] = 420 }},
		{"a mode without its leading zero", func(p map[string]any) { file(p)["mode"] = "640" }},
		{"a directory's mode as a number", func(p map[string]any) { host(p)["dirs"].([]any)[0].(map[string]any)["mode"] = 493 }},
		{"a missing field", func(p map[string]any) { delete(file(p), "drift") }},
		{"a missing top-level field", func(p map[string]any) { delete(p, "layoutHash") }},
		{"a missing summary count", func(p map[string]any) { delete(p["summary"].(map[string]any), "hostsChanged") }},
		{"an unknown field", func(p map[string]any) { p["extra"] = true }},
		{"an unknown field of a file", func(p map[string]any) { file(p)["content"] = "servername: imap3" }},
		{"snake case", func(p map[string]any) { h := host(p); h["needs_work"] = h["needsWork"]; delete(h, "needsWork") }},
		{"Go field names", func(p map[string]any) { h := host(p); h["NeedsWork"] = h["needsWork"]; delete(h, "needsWork") }},
		{"format 1", func(p map[string]any) { p["format"] = 1 }},
		{"null for a list", func(p map[string]any) { p["actions"] = nil }},
		{"null for a file's options", func(p map[string]any) { file(p)["options"] = nil }},
		{"null for a map", func(p map[string]any) { host(p)["observed"] = nil }},
		{"a short hash", func(p map[string]any) { file(p)["after"] = "abc" }},
		{"an uppercase hash", func(p map[string]any) { p["renderHash"] = strings.ToUpper(p["renderHash"].(string)) }},
		{"a created file with a before hash", func(p map[string]any) { file(p)["before"] = file(p)["after"] }},
		{"an unknown action", func(p map[string]any) { file(p)["action"] = "unchanged" }},
		{"an unknown kind", func(p map[string]any) { file(p)["kind"] = "sieve" }},
		{"an unknown verb", func(p map[string]any) { action(p)["verb"] = "kill" }},
		{"a spare role", func(p map[string]any) { action(p)["role"] = "spare" }},
		{"an unknown transport", func(p map[string]any) { p["transport"].(map[string]any)["kind"] = "rsync" }},
		{"a count as a string", func(p map[string]any) { p["summary"].(map[string]any)["files"] = "3" }},
		{"a negative count", func(p map[string]any) { p["summary"].(map[string]any)["files"] = -1 }},
		{"dirty as a string", func(p map[string]any) { p["dirty"] = "false" }},
		{"an unread host without its error", func(p map[string]any) {
			for _, h := range p["hosts"].([]any) {
				if h := h.(map[string]any); h["read"] == false {
					h["error"] = ""
				}
			}
		}},
		{"a start with no address", func(p map[string]any) { action(p)["addr"] = "" }},
		{"a relative path", func(p map[string]any) { file(p)["path"] = "etc/cyrus/slot301/imapd.conf" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p map[string]any
			if err := json.Unmarshal(valid, &p); err != nil {
				t.Fatal(err)
			}
			tt.edit(p)
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			err = validateJSON(sch, data)
			if err == nil {
				t.Fatal("the schema accepts it")
			}
			t.Logf("rejected: %v", err)
		})
	}
}

func host(p map[string]any) map[string]any { return p["hosts"].([]any)[0].(map[string]any) }
func file(p map[string]any) map[string]any { return host(p)["files"].([]any)[0].(map[string]any) }
func action(p map[string]any) map[string]any {
	return p["actions"].([]any)[0].(map[string]any)
}

// TestSchemaCoversTypes: every JSON field of the Go types of the plan is
// a required, described property of the schema, and the schema has no
// other; every struct type reachable from Plan has its definition. A
// field added to plan.go fails here until the schema documents it.
func TestSchemaCoversTypes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(Schema, &doc); err != nil {
		t.Fatal(err)
	}
	defs := doc["$defs"].(map[string]any)
	schemaOf := map[reflect.Type]map[string]any{
		reflect.TypeFor[Plan]():          doc,
		reflect.TypeFor[Transport]():     defs["transport"].(map[string]any),
		reflect.TypeFor[Host]():          defs["host"].(map[string]any),
		reflect.TypeFor[Manifest]():      defs["manifest"].(map[string]any),
		reflect.TypeFor[ManifestFile]():  defs["manifestFile"].(map[string]any),
		reflect.TypeFor[FileChange]():    defs["fileChange"].(map[string]any),
		reflect.TypeFor[OptionChange]():  defs["optionChange"].(map[string]any),
		reflect.TypeFor[DirChange]():     defs["dirChange"].(map[string]any),
		reflect.TypeFor[RoleWrite]():     defs["roleWrite"].(map[string]any),
		reflect.TypeFor[ServiceAction](): defs["serviceAction"].(map[string]any),
		reflect.TypeFor[Summary]():       defs["summary"].(map[string]any),
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		sch, ok := schemaOf[typ]
		if !ok {
			t.Errorf("%s: no definition in plan.schema.json", typ)
			return
		}
		var fields []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				t.Errorf("%s.%s: no JSON name", typ, f.Name)
				continue
			}
			fields = append(fields, name)
			walk(f.Type)
		}
		sort.Strings(fields)
		props, _ := sch["properties"].(map[string]any)
		if got := slices.Sorted(maps.Keys(props)); !slices.Equal(got, fields) {
			t.Errorf("%s: the schema's properties are %v; the Go type's fields %v", typ, got, fields)
		}
		var required []string
		for _, r := range sch["required"].([]any) {
			required = append(required, r.(string))
		}
		if sort.Strings(required); !slices.Equal(required, fields) {
			t.Errorf("%s: the schema requires %v; the Go type has %v", typ, required, fields)
		}
		if sch["additionalProperties"] != false {
			t.Errorf("%s: the schema allows other properties", typ)
		}
		for name, p := range props {
			if d, _ := p.(map[string]any)["description"].(string); d == "" {
				t.Errorf("%s.%s: no description in the schema", typ, name)
			}
		}
	}
	walk(reflect.TypeFor[Plan]())

	// The enums are the Go constants.
	enum := func(def string) []string {
		var out []string
		for _, v := range defs[def].(map[string]any)["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	prop := func(def, name string) map[string]any {
		return defs[def].(map[string]any)["properties"].(map[string]any)[name].(map[string]any)
	}
	strs := func(v any) []string {
		var out []string
		for _, s := range v.([]any) {
			out = append(out, s.(string))
		}
		return out
	}
	var kinds []string
	for _, k := range render.Kinds {
		kinds = append(kinds, string(k))
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"kinds", enum("kind"), kinds},
		{"roles", enum("role"), []string{string(layout.Master), string(layout.Replica)}},
		{"verbs", strs(prop("serviceAction", "verb")["enum"]), []string{string(Stop), string(Start), string(Restart), string(Reload), string(Provision)}},
		{"file actions", strs(prop("fileChange", "action")["enum"]), []string{string(Create), string(Update), string(Delete)}},
		{"directory actions", strs(prop("dirChange", "action")["enum"]), []string{string(Create), string(Update)}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("the schema's %s are %v; plan.go's %v", c.what, c.got, c.want)
		}
	}
	if f := doc["properties"].(map[string]any)["format"].(map[string]any)["const"]; f != float64(Format) {
		t.Errorf("the schema describes format %v; plan.go writes %d", f, Format)
	}
}
