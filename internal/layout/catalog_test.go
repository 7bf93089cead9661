package layout

import (
	"slices"
	"testing"
)

// TestCatalog checks the embedded 3.6.1 catalog: every option of the
// release with its type, and every default Cyrus ships passes the check
// of its own type.
func TestCatalog(t *testing.T) {
	cat := catalogFor("3.6.1")
	if cat == nil {
		t.Fatalf("no catalog for 3.6.1; have %q", catalogVersions())
	}
	if n := len(cat.Options); n != 526 {
		t.Errorf("%d options, want 526 (the 524 of the release, and maxargssize and maxliteral of Debian's)", n)
	}
	types := map[string]int{}
	for _, o := range cat.Options {
		types[o.Type]++
		if o.Default == "" {
			continue
		}
		if msg := o.check(o.Default, o.Default); msg != "" {
			t.Errorf("%s (%s): its default fails its check: %s", o.Name, o.Type, msg)
		}
	}
	for typ, want := range map[string]int{typeSwitch: 134, typeInt: 71, typeString: 229, typeDuration: 42, typeEnum: 12, typeStringList: 31, typeBitfield: 7} {
		if types[typ] != want {
			t.Errorf("%d options of type %s, want %d", types[typ], typ, want)
		}
	}
	for _, tc := range []struct {
		name, typ, def, deprecated, replacedBy string
		values                                 []string
	}{
		{"quota_db", typeStringList, "quotalegacy", "", "", []string{"flat", "skiplist", "sql", "quotalegacy", "twoskip", "zeroskip"}},
		{"duplicatesuppression", typeSwitch, "1", "", "", nil},
		{"maxlogins_per_user", typeInt, "0", "", "", nil},
		{"timeout", typeDuration, "32m", "", "", nil},
		{"virtdomains", typeEnum, "off", "", "", []string{"off", "userid", "on"}},
		{"archive_days", typeDuration, "", "3.1.8", "archive_after", nil},
		{"flushseenstate", typeSwitch, "1", "2.5.0", "", nil},
		{"maxliteral", typeInt, "131072", "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := cat.Options[tc.name]
			if o == nil {
				t.Fatalf("no option %s", tc.name)
			}
			if o.Type != tc.typ || o.Default != tc.def || o.Deprecated != tc.deprecated || o.ReplacedBy != tc.replacedBy || !slices.Equal(o.Values, tc.values) {
				t.Errorf("%s = %+v, want type %s, default %q, deprecated %q by %q, values %q", tc.name, *o, tc.typ, tc.def, tc.deprecated, tc.replacedBy, tc.values)
			}
		})
	}
	if got := cat.Options["sieve_extensions"].Aliases; got["imapflags"] != "imap4flags" || got["x-cyrus-snooze"] != "snooze" || got["vnd.cyrus.snooze"] != "snooze" {
		t.Errorf("sieve_extensions aliases = %q, want imapflags for imap4flags, vnd.cyrus.snooze and x-cyrus-snooze for snooze", got)
	}
}

func TestParseCatalogErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"columns", "a\tINT\t\t0\n", "line 1: 4 columns, want 7"},
		{"type", "# c\na\tFLOAT\t\t0\t1.0\t\t\n", `line 2: option a has unknown type "FLOAT"`},
		{"values", "a\tENUM\t\t\t1.0\t\t\n", "line 1: ENUM a has no values"},
		{"twice", "a\tINT\t\t0\t1.0\t\t\na\tINT\t\t0\t1.0\t\t\n", "line 2: option a listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCatalog("x", []byte(tc.data))
			if err == nil || err.Error() != tc.want {
				t.Errorf("parseCatalog = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOptionTypes(t *testing.T) {
	cat := catalogFor("3.6.1")
	const (
		notSwitch   = " is not a switch: use true or false (or yes/no, on/off, 1/0)"
		notDuration = " is not a duration: use a number with a unit d, h, m or s, like 30s, 5m, 1h30m or 2d (a bare number is in the option's default unit)"
		notByteSize = " is not a byte size: use a number with an optional K, M or G, like 512K or 2M"
	)
	byteSize := &optionSpec{Name: "maxliteral", Type: typeByteSize} // 3.6.1 has none
	for _, tc := range []struct {
		name   string
		option string
		spec   *optionSpec
		val    string
		want   string // "" for a good value; the message after the shown value
	}{
		{"switch yes", "duplicatesuppression", nil, "yes", ""},
		{"switch no", "duplicatesuppression", nil, "no", ""},
		{"switch on", "duplicatesuppression", nil, "on", ""},
		{"switch off", "duplicatesuppression", nil, "off", ""},
		{"switch true", "duplicatesuppression", nil, "true", ""},
		{"switch false", "duplicatesuppression", nil, "false", ""},
		{"switch 1", "duplicatesuppression", nil, "1", ""},
		{"switch 0", "duplicatesuppression", nil, "0", ""},
		{"switch t", "duplicatesuppression", nil, "t", ""},
		{"switch maybe", "duplicatesuppression", nil, "maybe", notSwitch},
		{"switch is case-sensitive, as Cyrus", "duplicatesuppression", nil, "Yes", notSwitch},
		{"switch 2", "duplicatesuppression", nil, "2", notSwitch},
		{"switch prefix that Cyrus would take", "duplicatesuppression", nil, "nonsense", notSwitch},
		{"int", "maxlogins_per_user", nil, "30", ""},
		{"int negative", "maxlogins_per_user", nil, "-1", ""},
		{"int plus", "maxlogins_per_user", nil, "+5", ""},
		{"int zero", "maxlogins_per_user", nil, "0", ""},
		{"int max", "maxlogins_per_user", nil, "2147483647", ""},
		{"int lots", "maxlogins_per_user", nil, "lots", " is not an integer"},
		{"int fraction", "maxlogins_per_user", nil, "1.5", " is not an integer"},
		{"int hex", "maxlogins_per_user", nil, "0x10", " is not an integer"},
		{"int octal", "maxlogins_per_user", nil, "010", ": Cyrus reads a number with a leading 0 as octal; write it without the 0"},
		{"int too large", "maxlogins_per_user", nil, "2147483648", " is out of range: Cyrus's integers are from -2147483647 to 2147483647"},
		{"int too large for int64", "maxlogins_per_user", nil, "99999999999999999999", " is out of range: Cyrus's integers are from -2147483647 to 2147483647"},
		{"duration bare", "timeout", nil, "30", ""},
		{"duration seconds", "timeout", nil, "30s", ""},
		{"duration minutes", "timeout", nil, "5m", ""},
		{"duration compound", "timeout", nil, "1h30m", ""},
		{"duration days", "timeout", nil, "2d", ""},
		{"duration trailing bare number", "timeout", nil, "1h30", ""},
		{"duration negative", "popexpiretime", nil, "-1", ""},
		{"duration units repeat, as Cyrus allows", "timeout", nil, "1m1m", ""},
		{"duration unit alone", "timeout", nil, "m", notDuration},
		{"duration minus alone", "timeout", nil, "-", notDuration},
		{"duration unknown unit", "timeout", nil, "1x", notDuration},
		{"duration upper case", "timeout", nil, "5M", notDuration},
		{"duration words", "timeout", nil, "5 minutes", notDuration},
		{"duration too long", "timeout", nil, "24856d", " is out of range: Cyrus keeps durations in seconds, at most 2147483647"},
		{"duration huge number", "timeout", nil, "99999999999s", " is out of range: Cyrus keeps durations in seconds, at most 2147483647"},
		{"bytesize bare", "", byteSize, "131072", ""},
		{"bytesize K", "", byteSize, "128K", ""},
		{"bytesize lower case", "", byteSize, "2m", ""},
		{"bytesize KiB", "", byteSize, "128KiB", ""},
		{"bytesize GB with a space", "", byteSize, "1 GB", ""},
		{"bytesize B", "", byteSize, "100B", ""},
		{"bytesize T", "", byteSize, "1T", notByteSize},
		{"bytesize lots", "", byteSize, "lots", notByteSize},
		{"bytesize iB without a multiplier", "", byteSize, "100iB", notByteSize},
		{"enum", "virtdomains", nil, "userid", ""},
		{"enum switch spelling of on", "virtdomains", nil, "yes", ""},
		{"enum switch spelling of off", "virtdomains", nil, "0", ""},
		{"enum switch spelling without on", "delete_mode", nil, "yes", " is not one of immediate, delayed"},
		{"enum maybe", "virtdomains", nil, "maybe", " is not one of off, userid, on"},
		{"enum is one value", "virtdomains", nil, "on off", " is not one of off, userid, on"},
		{"stringlist", "quota_db", nil, "twoskip", ""},
		{"stringlist nosuchdb", "quota_db", nil, "nosuchdb", " is not one of flat, skiplist, sql, quotalegacy, twoskip, zeroskip"},
		{"stringlist takes no switch spelling", "quota_db", nil, "yes", " is not one of flat, skiplist, sql, quotalegacy, twoskip, zeroskip"},
		{"bitfield one", "event_groups", nil, "message", ""},
		{"bitfield many", "event_groups", nil, "message mailbox  quota", ""},
		{"bitfield unknown", "event_groups", nil, "message nosuch", `: "nosuch" is not one of message, quota, flags, access, mailbox, subscription, calendar, applepushservice (the value is a space-separated list of them)`},
		{"bitfield comma", "event_groups", nil, "message,quota", `: "message,quota" is not one of message, quota, flags, access, mailbox, subscription, calendar, applepushservice (the value is a space-separated list of them)`},
		{"bitfield deprecated spelling", "sieve_extensions", nil, "fileinto imapflags", ": imapflags is a deprecated spelling: use imap4flags"},
		{"bitfield dotted value", "sieve_extensions", nil, "vnd.cyrus.log", ""},
		{"string anything", "plaintextloginalert", nil, `"quoted" and 'single' $(not run)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.spec
			if o == nil {
				if o = cat.Options[tc.option]; o == nil {
					t.Fatalf("no option %s", tc.option)
				}
			}
			got := o.check(tc.val, "V")
			want := ""
			if tc.want != "" {
				want = "V" + tc.want
			}
			if got != want {
				t.Errorf("check(%s, %q) = %q, want %q", o.Name, tc.val, got, want)
			}
		})
	}
}

func TestCatalogNamesLeaveOutDeprecated(t *testing.T) {
	names := catalogFor("3.6.1").names()
	if !slices.IsSorted(names) {
		t.Error("names are not sorted")
	}
	for _, n := range []string{"archive_days", "tls_cert_file", "flushseenstate"} {
		if slices.Contains(names, n) {
			t.Errorf("names has the deprecated %s", n)
		}
	}
	if !slices.Contains(names, "archive_after") {
		t.Error("names lacks archive_after")
	}
}
