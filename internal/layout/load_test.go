package layout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// exampleDir is the example layout of the repository.
const exampleDir = "../../layout"

func TestExampleLayout(t *testing.T) {
	l, err := Load(exampleDir)
	if err != nil {
		var errs Errors
		if errors.As(err, &errs) {
			t.Fatalf("example layout:\n%s", errs.Format(exampleDir))
		}
		t.Fatal(err)
	}
	if len(l.Hosts) < 6 {
		t.Errorf("%d hosts, want at least 6", len(l.Hosts))
	}
	if len(l.Stores) < 12 {
		t.Errorf("%d stores, want at least 12", len(l.Stores))
	}

	// The stores of the seed.
	for _, tc := range []struct {
		store, master, masterHost, replica, replicaHost string
	}{
		{"store23", "slot608", "imap6", "slot308", "imap3"},
		{"store24", "slot908", "imap9", "slot503", "imap5"},
		{"store13", "slot405", "imap4", "slot703", "imap7"},
	} {
		t.Run(tc.store, func(t *testing.T) {
			st := l.Stores[tc.store]
			if st == nil {
				t.Fatalf("no store %s", tc.store)
			}
			if st.Master != tc.master || !slices.Equal(st.Replicas, []string{tc.replica}) {
				t.Errorf("%s: master %s, replicas %q; want %s, [%s]", tc.store, st.Master, st.Replicas, tc.master, tc.replica)
			}
			for _, s := range []struct {
				name, host string
				role       Role
			}{{tc.master, tc.masterHost, Master}, {tc.replica, tc.replicaHost, Replica}} {
				slot := l.Slots[s.name]
				if slot == nil {
					t.Errorf("no slot %s", s.name)
					continue
				}
				if slot.Host != s.host || slot.Store != tc.store || slot.Role != s.role {
					t.Errorf("slot %s: host %s, store %s, role %s; want %s, %s, %s", s.name, slot.Host, slot.Store, slot.Role, s.host, tc.store, s.role)
				}
			}
		})
	}

	st := l.Stores["store23"]
	if st == nil {
		t.Fatal("no store23")
	}
	if st.Build != "3.6.1-fm1" || !st.Pinned {
		t.Errorf("store23: build %q (pinned %v), want 3.6.1-fm1, pinned", st.Build, st.Pinned)
	}
	if b := l.Builds["3.6.1-fm1"]; b == nil || b.Prefix != "/usr/cyrusnew" || b.Version != "3.6.1" {
		t.Errorf("build 3.6.1-fm1 = %+v, want prefix /usr/cyrusnew, version 3.6.1", b)
	}
	if got := l.BuildOf("slot608"); got == nil || got.Name != "3.6.1-fm1" {
		t.Errorf("BuildOf(slot608) = %+v, want 3.6.1-fm1", got)
	}
	if st.Imapd["quota_db"] != "twoskip" {
		t.Errorf("store23 imapd = %v, want quota_db: twoskip", st.Imapd)
	}
	if st24 := l.Stores["store24"]; st24 == nil || st24.Pinned || st24.Build != l.DefaultBuild || l.DefaultBuild != "3.6.1" {
		t.Errorf("store24 = %+v, want the default build 3.6.1, not pinned", st24)
	}
	if l.Imapd["allowplaintext"] != "no" || l.Imapd["duplicatesuppression"] != "yes" {
		t.Errorf("layout imapd = %v, want booleans as yes/no", l.Imapd)
	}

	// Slot 608 is partition 8 on imap6, with the default mount points and ports.
	s := l.Slots["slot608"]
	want := Slot{Name: "slot608", Host: "imap6", Partition: 8, Meta: "/mnt/meta8", Data: "/mnt/data8",
		IMAPPort: l.Ports.IMAP + 8, SyncPort: l.Ports.Sync + 8, Store: "store23", Role: Master}
	if s == nil || *s != want {
		t.Errorf("slot608 = %+v, want %+v", s, want)
	}

	var spare []string
	for _, name := range l.SlotNames() {
		if sl := l.Slots[name]; sl.Store == "" {
			if sl.Role != Spare {
				t.Errorf("slot %s is in no store but has role %s", name, sl.Role)
			}
			spare = append(spare, name)
		}
	}
	if len(spare) == 0 {
		t.Error("no spare slot")
	}

	if l.Failover.MaxPerHost < 1 {
		t.Fatalf("failover.maxPerHost = %d, want a limit", l.Failover.MaxPerHost)
	}
	for _, sp := range l.Spreads() {
		if sp.Worst > l.Failover.MaxPerHost {
			t.Errorf("host %s: %d masters fail over to %s, above maxPerHost %d", sp.Host, sp.Worst, sp.WorstTo, l.Failover.MaxPerHost)
		}
	}
}

// TestLoadFS loads the example layout from an fs.FS, as from a git
// revision, and an invalid one whose positions name name/<file>.
func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, name := range []string{"fleet.cue", "stores.cue"} {
		data, err := os.ReadFile(filepath.Join(exampleDir, name))
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: data}
	}
	l, err := LoadFS(fsys, "HEAD:layout")
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	want, err := Load(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("LoadFS and Load give different layouts")
	}

	fsys["bad.cue"] = &fstest.MapFile{Data: []byte("package layout\n\nstores: store99: {master: \"slot6\", replicas: [\"slot399\"], ip: master: \"10.9.9.9\"}\n")}
	_, err = LoadFS(fsys, "HEAD:layout")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("LoadFS of a bad layout: %v, want Errors", err)
	}
	got := errs.Format("")
	const wantErr = "HEAD:layout/bad.cue:3:27: stores.store99.master: \"slot6\" is not a slot name: slot<host number><two-digit partition>, like slot608\n"
	if got != wantErr {
		t.Errorf("LoadFS errors:\n%s\nwant:\n%s", got, wantErr)
	}
}

// writeLayout writes files (name -> CUE source after the package
// clause) to a new directory and returns it.
func writeLayout(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		writeFile(t, filepath.Join(dir, name), []byte("package layout\n\n"+src))
	}
	return dir
}

const smallFleet = `
domain:       "internal"
cyrus: "3.6.1": prefix: "/usr/lib/cyrus"
defaultCyrus: "3.6.1"
hosts: {
	imap1: {number: 1, address: "10.0.0.1"}
	imap2: {number: 2, address: "10.0.0.2"}
	imap3: {number: 3, address: "10.0.0.3"}
	imap4: {number: 4, address: "10.0.0.4"}
}
`

func TestSpreads(t *testing.T) {
	dir := writeLayout(t, map[string]string{
		"fleet.cue": smallFleet,
		"stores.cue": `
stores: {
	s1: {master: "slot101", replicas: ["slot201"], ip: master: "10.0.1.1"}
	s2: {master: "slot102", replicas: ["slot202"], ip: master: "10.0.1.2"}
	s3: {master: "slot103", replicas: ["slot301"], ip: master: "10.0.1.3"}
	s4: {master: "slot203", replicas: ["slot302"], ip: master: "10.0.1.4"}
	s5: {master: "slot204", replicas: ["slot104", "slot303"], ip: master: "10.0.1.5"}
}
failover: maxPerHost: 1
`,
	})
	// imap1 sends two masters to imap2: over the limit, unless the
	// caller reports the spread itself.
	_, err := Load(dir)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, "if host imap1 is out of service, 2 of its 3 masters fail over to host imap2; the limit is 1") {
		t.Fatalf("Load with maxPerHost 1: %v, want one spread error", err)
	}
	l, err := Load(dir, NoSpreadLimit())
	if err != nil {
		t.Fatalf("Load(NoSpreadLimit): %v", err)
	}
	got := map[string]Spread{}
	for _, sp := range l.Spreads() {
		got[sp.Host] = sp
	}
	for _, tc := range []struct {
		name string
		host string
		want Spread
	}{
		{"concentrated", "imap1", Spread{Host: "imap1", Masters: 3, To: map[string]int{"imap2": 2, "imap3": 1}, Worst: 2, WorstTo: "imap2"}},
		{"even, first replica counts, tie to the lowest number", "imap2", Spread{Host: "imap2", Masters: 2, To: map[string]int{"imap1": 1, "imap3": 1}, Worst: 1, WorstTo: "imap1"}},
		{"replicas only", "imap3", Spread{Host: "imap3", To: map[string]int{}}},
		{"empty host", "imap4", Spread{Host: "imap4", To: map[string]int{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if sp := got[tc.host]; !reflect.DeepEqual(sp, tc.want) {
				t.Errorf("spread of %s = %+v, want %+v", tc.host, sp, tc.want)
			}
		})
	}
	var order []string
	for _, sp := range l.Spreads() {
		order = append(order, sp.Host)
	}
	if want := []string{"imap1", "imap2", "imap3", "imap4"}; !slices.Equal(order, want) {
		t.Errorf("Spreads order %q, want %q", order, want)
	}
}

// TestSmallLayout checks what a valid layout decodes to: derived slots,
// overrides, defaults and option values.
func TestSmallLayout(t *testing.T) {
	dir := writeLayout(t, map[string]string{
		"fleet.cue": smallFleet,
		"more.cue": `
hosts: imap4: {interface: "bond0", ssh: {user: "admin", port: 2222}}
slots: {
	slot101: {meta: "/srv/meta/1", data: "/srv/data/1", ports: {imap: 1143, sync: 2005}}
	slot499: {}
}
stores: s1: {
	master: "slot101"
	replicas: ["slot201", "slot301"]
	ip: {master: "10.0.1.1", replica: "fd00::1"}
	imapd: {timeout: 30, popminpoll: 2.0, imap_allowplaintext: true, sasl_mech_list: "PLAIN"}
}
imapd: {admins: " cyrus ", sieve_maxscripts: 5}
replication: password: "repl-secret"
secrets: other: env: "OTHER_PASS"
ports: imap: 10000
`,
	})
	l, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{"overridden slot", *l.Slots["slot101"], Slot{Name: "slot101", Host: "imap1", Partition: 1, Meta: "/srv/meta/1", Data: "/srv/data/1", IMAPPort: 1143, SyncPort: 2005, Store: "s1", Role: Master}},
		{"derived replica", *l.Slots["slot301"], Slot{Name: "slot301", Host: "imap3", Partition: 1, Meta: "/mnt/meta1", Data: "/mnt/data1", IMAPPort: 10001, SyncPort: 14401, Store: "s1", Role: Replica}},
		{"spare", *l.Slots["slot499"], Slot{Name: "slot499", Host: "imap4", Partition: 99, Meta: "/mnt/meta99", Data: "/mnt/data99", IMAPPort: 10099, SyncPort: 14499, Role: Spare}},
		{"slot count", len(l.Slots), 4},
		{"host defaults", *l.Hosts["imap1"], Host{Name: "imap1", Number: 1, Address: "10.0.0.1", Interface: "eth0", SSHUser: "root", SSHPort: 22}},
		{"host overrides", *l.Hosts["imap4"], Host{Name: "imap4", Number: 4, Address: "10.0.0.4", Interface: "bond0", SSHUser: "admin", SSHPort: 2222}},
		{"store", *l.Stores["s1"], Store{Name: "s1", Master: "slot101", Replicas: []string{"slot201", "slot301"}, Build: "3.6.1",
			IP:    FloatingIPs{Master: "10.0.1.1", Replica: "fd00::1"},
			Imapd: Options{"timeout": "30", "popminpoll": "2", "imap_allowplaintext": "yes", "sasl_mech_list": "PLAIN"}}},
		{"store slots", l.Stores["s1"].Slots(), []string{"slot101", "slot201", "slot301"}},
		{"layout options", l.Imapd, Options{"admins": "cyrus", "sieve_maxscripts": "5"}},
		{"option keys sorted", l.Stores["s1"].Imapd.Keys(), []string{"imap_allowplaintext", "popminpoll", "sasl_mech_list", "timeout"}},
		{"ports", l.Ports, Ports{IMAP: 10000, Sync: 14400}},
		{"replication", l.Replication, Replication{Authname: "repluser", Password: "repl-secret"}},
		{"secrets", l.Secrets, map[string]*Secret{
			"repl-secret": {Name: "repl-secret", Env: "CYRPLAN_SECRET_REPL_SECRET"},
			"other":       {Name: "other", Env: "OTHER_PASS"},
		}},
		{"no spread limit", l.Failover, Failover{}},
		{"default build of a spare", l.BuildOf("slot499").Name, "3.6.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", tc.got, tc.want)
			}
		})
	}
}

// TestLoadErrors checks the errors about the layout directory itself:
// each names the directory as the operator gave it.
func TestLoadErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	writeFile(t, "README.md", []byte("# not a layout\n"))
	writeFile(t, "notes/x.txt", []byte("hello\n"))
	writeFile(t, "hidden/_stores.cue", []byte("package layout\n"))
	writeFile(t, "dirnamedcue/stores.cue/fleet.cue", []byte("package layout\n"))
	if err := os.Mkdir("empty", 0o777); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"missing directory", "nowhere", "nowhere: no such directory"},
		{"a file", "README.md", "README.md: not a directory"},
		{"empty directory", "empty", "empty: no .cue files: a layout is a CUE package in a directory"},
		{"no CUE files", "notes", "notes: no .cue files: a layout is a CUE package in a directory"},
		{"only files CUE skips", "hidden", "hidden: no .cue files: a layout is a CUE package in a directory"},
		{"a directory named .cue", "dirnamedcue", "dirnamedcue: no .cue files: a layout is a CUE package in a directory"},
		{"trailing slash kept", "empty/", "empty/: no .cue files: a layout is a CUE package in a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.dir)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Load(%q) = %v, want %q", tc.dir, err, tc.want)
			}
		})
	}
	t.Run("LoadFS of no CUE files", func(t *testing.T) {
		_, err := LoadFS(fstest.MapFS{"README.md": {Data: []byte("hi")}}, "HEAD:layout")
		if want := "HEAD:layout: no .cue files: a layout is a CUE package in a directory"; err == nil || err.Error() != want {
			t.Errorf("LoadFS = %v, want %q", err, want)
		}
	})
	t.Run("Errors.Error", func(t *testing.T) {
		dir := writeLayout(t, map[string]string{"fleet.cue": smallFleet + `stors: {}` + "\nslots: slotX: {}\n"})
		_, err := Load(dir)
		var errs Errors
		if !errors.As(err, &errs) || len(errs) != 2 {
			t.Fatalf("Load: %v, want 2 errors", err)
		}
		want := fmt.Sprintf("%s:13:1: stors: unknown field stors (did you mean stores?) (and 1 more errors)", filepath.Join(dir, "fleet.cue"))
		if err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	})
}
