package layout

import (
	"reflect"
	"slices"
	"testing"
)

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		want int
	}{
		{"both empty", "", "", 0},
		{"one empty", "abc", "", 3},
		{"other empty", "", "abc", 3},
		{"equal", "stores", "stores", 0},
		{"one deletion", "stors", "stores", 1},
		{"one substitution", "sync_hast", "sync_host", 1},
		{"transposition is two edits", "sync_hots", "sync_host", 2},
		{"classic", "kitten", "sitting", 3},
		{"symmetric", "sitting", "kitten", 3},
		{"all different", "abc", "xyz", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := levenshtein(tc.a, tc.b); got != tc.want {
				t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	top := []string{"domain", "cyrus", "defaultCyrus", "hosts", "slots", "stores", "imapd", "replication", "secrets", "ports", "failover"}
	for _, tc := range []struct {
		name       string
		s          string
		candidates []string
		want       string
	}{
		{"missing letter", "stors", top, "stores"},
		{"extra letter", "hostss", top, "hosts"},
		{"case", "defaultcyrus", top, "defaultCyrus"},
		{"exact", "slots", top, "slots"},
		{"nothing close", "frobnicate", top, ""},
		{"short words allow one edit", "ab", []string{"abc"}, "abc"},
		{"short words not two", "ab", []string{"abcd"}, ""},
		{"at most three edits", "abcdefghijkl", []string{"abcdefghixxx"}, "abcdefghixxx"},
		{"never four edits", "abcdefghijkl", []string{"abcdefghxxxx"}, ""},
		{"closest wins", "sync_hots", []string{"sync_hostx", "sync_host", "sync_log"}, "sync_host"},
		{"ties go to the first in order", "cat", []string{"cab", "bat"}, "bat"},
		{"no candidates", "stores", nil, ""},
		{"build names", "3.6.1-fm", []string{"3.6.1", "3.6.1-fm1"}, "3.6.1-fm1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.candidates)
			if got := suggest(tc.s, tc.candidates); got != tc.want {
				t.Errorf("suggest(%q, %q) = %q, want %q", tc.s, tc.candidates, got, tc.want)
			}
			if !slices.Equal(before, tc.candidates) {
				t.Errorf("suggest reordered its candidates: %q", tc.candidates)
			}
		})
	}
}

func TestHintFrom(t *testing.T) {
	for _, tc := range []struct {
		name       string
		s          string
		candidates []string
		want       string
	}{
		{"near", "3.6.1-fm", []string{"3.6.1", "3.6.1-fm1"}, "did you mean 3.6.1-fm1?"},
		{"far lists the candidates sorted", "trunk", []string{"3.6.1-fm1", "3.6.1"}, "defined: 3.6.1, 3.6.1-fm1"},
		{"none", "trunk", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hintFrom(tc.s, tc.candidates); got != tc.want {
				t.Errorf("hintFrom(%q, %q) = %q, want %q", tc.s, tc.candidates, got, tc.want)
			}
		})
	}
}

func TestPathString(t *testing.T) {
	for _, tc := range []struct {
		name string
		path []string
		want string
	}{
		{"empty", nil, ""},
		{"top level", []string{"domain"}, "domain"},
		{"nested", []string{"slots", "slot301", "ports", "imap"}, "slots.slot301.ports.imap"},
		{"index", []string{"stores", "store23", "replicas", "0"}, "stores.store23.replicas[0]"},
		{"second index", []string{"stores", "store23", "replicas", "12"}, "stores.store23.replicas[12]"},
		{"dotted label is quoted", []string{"cyrus", "3.6.1", "prefix"}, `cyrus."3.6.1".prefix`},
		{"dash is quoted", []string{"imapd", "partition-foo"}, `imapd."partition-foo"`},
		{"slash is quoted", []string{"hosts", "a/b"}, `hosts."a/b"`},
		{"space is quoted", []string{"hosts", "imap 5"}, `hosts."imap 5"`},
		{"quote is escaped", []string{"hosts", `a"b`}, `hosts."a\"b"`},
		{"leading number is a label, not an index", []string{"0"}, `"0"`},
		{"underscore", []string{"imapd", "sync_host"}, "imapd.sync_host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pathString(tc.path); got != tc.want {
				t.Errorf("pathString(%q) = %s, want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestOptionValue(t *testing.T) {
	const kinds = "an imapd.conf value is a string, an integer or a boolean, not "
	for _, tc := range []struct {
		name    string
		v       any
		want    string
		wantErr string
	}{
		{"string", "cyrus", "cyrus", ""},
		{"string is trimmed", "  PLAIN LOGIN  ", "PLAIN LOGIN", ""},
		{"quotes and shell characters are text", `"a" 'b' $(c) ;|&`, `"a" 'b' $(c) ;|&`, ""},
		{"empty string", "", "", "the value is empty, which Cyrus refuses; remove the option to have Cyrus's default"},
		{"only spaces", "   ", "", "the value is empty, which Cyrus refuses; remove the option to have Cyrus's default"},
		{"newline", "cyrus\nconfigdirectory: /tmp", "", "an imapd.conf value cannot contain a line break"},
		{"carriage return", "twoskip\r", "", "an imapd.conf value cannot contain a line break"},
		{"tab", "PLAIN\tLOGIN", "", `an imapd.conf value cannot contain the control character '\t'`},
		{"NUL", "a\x00b", "", `an imapd.conf value cannot contain the control character '\x00'`},
		{"C1 control", "a\u0085b", "", `an imapd.conf value cannot contain the control character '\u0085'`},
		{"trailing backslash joins the next line", `C:\`, "", `an imapd.conf value cannot end in \: Cyrus would join the next line to it`},
		{"backslash inside is text", `\\Junk`, `\\Junk`, ""},
		{"secret marker", "<<secret:replication>>", "", "an imapd.conf value cannot contain <<secret:: cyrplan marks secrets so, and apply would write the secret here"},
		{"true", true, "yes", ""},
		{"false", false, "no", ""},
		{"int", 30, "30", ""},
		{"negative int", -1, "-1", ""},
		{"int64", int64(1) << 40, "1099511627776", ""},
		{"whole float", 2.0, "2", ""},
		{"fraction", 1.5, "", "1.5 is not an integer: an imapd.conf value is a string, an integer or a boolean"},
		{"list", []any{"cyrus", "repluser"}, "", kinds + "a list"},
		{"struct", map[string]any{"storage": 100}, "", kinds + "a struct"},
		{"null", nil, "", kinds + "null"},
		{"other type", uint8(3), "", kinds + "a uint8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := optionValue(tc.v)
			if got != tc.want || err != tc.wantErr {
				t.Errorf("optionValue(%#v) = %q, %q; want %q, %q", tc.v, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestOwned(t *testing.T) {
	for _, tc := range []struct {
		key     string
		wantWhy string
		want    bool
	}{
		{"configdirectory", "paths", true},
		{"defaultpartition", "paths", true},
		{"servername", "identity", true},
		{"sync_host", "replication", true},
		{"sync_log", "replication", true},
		{"sync_password", "replication", true},
		{"partition-foo", "paths", true},
		{"metapartition-default", "paths", true},
		{"searchpartition-default", "paths", true},
		{"slot308_sync_host", "replication channels", true},
		{"imap_sync_port", "replication channels", true},
		{"imap_servername", "identity", true}, // a service's copy overrides cyrplan's
		{"lmtpunix_lmtpsocket", "paths", true},
		{"imapfloat_configdirectory", "paths", true},
		{"imap_admins", "", false},
		{"admins", "", false},
		{"sync_repeat_interval", "", false},
		{"quota_db", "", false},
		{"partition", "", false},
		{"", "", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			why, ok := owned(tc.key)
			if why != tc.wantWhy || ok != tc.want {
				t.Errorf("owned(%q) = %q, %v; want %q, %v", tc.key, why, ok, tc.wantWhy, tc.want)
			}
		})
	}
}

func TestKnown(t *testing.T) {
	catalog := catalogFor("3.6.1")
	if catalog == nil {
		t.Fatalf("no catalog for 3.6.1; have %q", catalogVersions())
	}
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"admins", true},
		{"allowplaintext", true},
		{"quota_db", true},
		{"sync_host", true}, // known to Cyrus; owned is a separate check
		{"sasl_pwcheck_method", true},
		{"sasl_anything_at_all", true}, // SASL options are passed through
		{"sasl_Upper", false},          // but only of lower-case letters, digits and _
		{"sasl_a-b", false},
		{"sasl_a\nb", false},
		{"imap_allowplaintext", true}, // service prefix
		{"imapfloat_admins", true},
		{"lmtpunix_duplicatesuppression", true},
		{"syncserver_timeout", true},
		{"pop3_allowplaintext", false}, // cyrplan renders no pop3 service
		{"imap_nosuchoption", false},
		{"imap_", false},
		{"allowplaintxt", false},
		{"sync_hots", false},
		{"", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := catalog.lookup(tc.key) != nil; got != tc.want {
				t.Errorf("lookup(3.6.1, %q) found %v, want %v", tc.key, got, tc.want)
			}
		})
	}
}

func TestNaturalLess(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		want bool
	}{
		{"number order", "store9", "store10", true},
		{"number order reversed", "store10", "store9", false},
		{"equal", "store10", "store10", false},
		{"leading zero equals", "store01", "store1", false},
		{"leading zero equals reversed", "store1", "store01", false},
		{"different prefixes are lexical", "imap10", "store2", true},
		{"different prefixes reversed", "store2", "imap10", false},
		{"no number is lexical", "store", "store1", true},
		{"no numbers at all", "beta", "alpha", false},
		{"digits inside are lexical", "a9b", "a10b", false},
		{"huge number is lexical", "s99999999999999999999", "s2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := naturalLess(tc.a, tc.b); got != tc.want {
				t.Errorf("naturalLess(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	l := &Layout{
		Hosts: map[string]*Host{
			"imap10": {Name: "imap10", Number: 10},
			"imap9":  {Name: "imap9", Number: 9},
			"b":      {Name: "b", Number: 2},
		},
		Slots: map[string]*Slot{
			"slot1001": {Name: "slot1001", Host: "imap10", Partition: 1},
			"slot902":  {Name: "slot902", Host: "imap9", Partition: 2},
			"slot910":  {Name: "slot910", Host: "imap9", Partition: 10},
			"slot201":  {Name: "slot201", Host: "b", Partition: 1},
		},
		Stores: map[string]*Store{
			"store100": {}, "store9": {}, "store10": {}, "store11": {}, "other": {},
		},
	}
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"HostNames by number", l.HostNames(), []string{"b", "imap9", "imap10"}},
		{"SlotNames by host number, then partition", l.SlotNames(), []string{"slot201", "slot902", "slot910", "slot1001"}},
		{"SlotsOn", l.SlotsOn("imap9"), []string{"slot902", "slot910"}},
		{"SlotsOn a host without slots", l.SlotsOn("nosuch"), nil},
		{"StoreNames natural", l.StoreNames(), []string{"other", "store9", "store10", "store11", "store100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// Prefixes gives each host the prefixes of the builds its slots run,
// sorted, each once; a host without slots has none.
func TestPrefixes(t *testing.T) {
	l := &Layout{
		Builds:       map[string]*Build{"old": {Prefix: "/usr/lib/cyrus"}, "new": {Prefix: "/usr/cyrusnew"}},
		DefaultBuild: "old",
		Hosts:        map[string]*Host{"a": {Name: "a"}, "b": {Name: "b"}, "c": {Name: "c"}},
		Slots: map[string]*Slot{
			"s1": {Name: "s1", Host: "a", Store: "pinned"},
			"s2": {Name: "s2", Host: "a"},
			"s3": {Name: "s3", Host: "a", Store: "plain"},
			"s4": {Name: "s4", Host: "b", Store: "plain"},
		},
		Stores: map[string]*Store{"pinned": {Build: "new"}, "plain": {Build: "old"}},
	}
	want := map[string][]string{"a": {"/usr/cyrusnew", "/usr/lib/cyrus"}, "b": {"/usr/lib/cyrus"}}
	if got := l.Prefixes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Prefixes: %q, want %q", got, want)
	}
}
