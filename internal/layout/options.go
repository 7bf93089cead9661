package layout

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Owned are the imapd.conf options that cyrplan writes itself for every
// slot; setting one in the layout is an error.
var Owned = map[string]string{
	"configdirectory":          "paths",
	"defaultpartition":         "paths",
	"metapartition_files":      "paths",
	"proc_path":                "paths",
	"mboxname_lockpath":        "paths",
	"lmtpsocket":               "paths",
	"idlesocket":               "paths",
	"notifysocket":             "paths",
	"sievedir":                 "paths",
	"sasl_sasldb_path":         "paths",
	"servername":               "identity",
	"syslog_prefix":            "identity",
	"master_bind_errors_fatal": "safety",
	"sync_log":                 "replication",
	"sync_log_channels":        "replication",
	"sync_host":                "replication",
	"sync_port":                "replication",
	"sync_authname":            "replication",
	"sync_password":            "replication",
	"sync_realm":               "replication",
	"sync_try_imap":            "replication",
	"sync_shutdown_file":       "replication",
}

// ownedPrefixes are option families that cyrplan owns.
var ownedPrefixes = []string{"partition-", "metapartition-", "archivepartition-", "searchpartition-", "backuppartition-"}

// Services are the cyrus.conf service names cyrplan renders; options
// prefixed with one of them ("imap_allowplaintext") apply to that
// service only and are accepted as Cyrus accepts them.
var Services = []string{"imap", "imapfloat", "lmtpunix", "syncserver"}

var (
	// optionNameRE is what Cyrus reads as an option name (it folds
	// upper case to lower).
	optionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// wildcardRE is what the names of option families may hold after
	// their prefix (sasl_*, partition-*).
	wildcardRE = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// checkOptions checks and formats imapd.conf options against build's
// catalog. If store is set the options are the layout-wide ones checked
// again for that store's build, and only unknown names are reported.
func (c *checker) checkOptions(p []string, raw map[string]any, build *Build, store string) Options {
	out := Options{}
	var cat *catalog
	if build != nil {
		cat = catalogFor(build.Version)
	}
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		// Stores mostly set the same options: each is checked once.
		k := checkedOption{cat, key, raw[key]}
		switch k.val.(type) {
		case string, int64, bool:
		default:
			k.val = nil // a list or a struct is not comparable, and no good value is nil
		}
		if val, ok := c.checkedOptions[k]; ok {
			out[key] = val
			continue
		}
		kp := append(p[:len(p):len(p)], key)
		if !optionNameRE.MatchString(key) {
			if store == "" {
				c.labelErrorf(kp, "option name %q: imapd.conf option names hold only letters, digits, '_' and '-'", key)
			}
			continue
		}
		if store == "" {
			if why, ok := owned(key); ok {
				c.labelErrorf(kp, "option %s is set by cyrplan (%s); remove it from the layout", key, why)
				continue
			}
		}
		var spec *optionSpec
		if cat != nil {
			if spec = cat.lookup(key); spec == nil {
				c.unknownOption(kp, key, build, store)
				continue
			}
		}
		if store != "" {
			continue
		}
		if spec != nil && spec.Deprecated != "" {
			c.deprecatedOption(kp, key, spec)
			continue
		}
		val, err := optionValue(raw[key])
		if err == "" && spec != nil {
			err = spec.check(val, shownValue(raw[key], val))
		}
		if err != "" {
			c.errorf(kp, "%s", err)
			continue
		}
		out[key] = val
		if k.val != nil {
			c.checkedOptions[k] = val
		}
	}
	return out
}

// checkedOption is an option value that checkOptions found good for a
// catalog (nil: none).
type checkedOption struct {
	cat *catalog
	key string
	val any // a string, an int64 or a bool
}

func (c *checker) unknownOption(kp []string, key string, build *Build, store string) {
	e := c.labelErrorf(kp, "Cyrus %s has no imapd.conf option %s", build.Version, key)
	if store != "" {
		e.Msg += " (store " + store + " runs build " + build.Name + ")"
	}
	if s := suggest(key, catalogFor(build.Version).names()); s != "" {
		e.Hint = "did you mean " + s + "?"
		if _, ok := owned(s); ok {
			// Do not send the operator to an error.
			e.Hint += " cyrplan sets " + s + " itself; remove this option"
		}
	}
}

func (c *checker) deprecatedOption(kp []string, key string, spec *optionSpec) {
	e := c.labelErrorf(kp, "option %s is deprecated since Cyrus %s", key, spec.Deprecated)
	if spec.ReplacedBy != "" {
		e.Hint = "use " + spec.ReplacedBy + " instead"
	} else {
		e.Hint = "it has no replacement; remove it"
	}
}

// owned says whether cyrplan sets the option key itself, and why. A
// service's copy of an owned option (imap_servername) is owned too: it
// would override cyrplan's for that service.
func owned(key string) (string, bool) {
	if why, ok := Owned[key]; ok {
		return why, true
	}
	for _, p := range ownedPrefixes {
		if strings.HasPrefix(key, p) {
			return "paths", true
		}
	}
	if _, rest, ok := strings.Cut(key, "_"); ok && strings.HasPrefix(rest, "sync_") {
		return "replication channels", true
	}
	for _, svc := range Services {
		if rest, ok := strings.CutPrefix(key, svc+"_"); ok {
			if why, ok := Owned[rest]; ok {
				return why, true
			}
		}
	}
	return "", false
}

// optionValue formats an option's value as imapd.conf holds it, or says
// why it cannot be one.
func optionValue(v any) (string, string) {
	switch v := v.(type) {
	case string:
		return stringValue(v)
	case bool:
		if v {
			return "yes", ""
		}
		return "no", ""
	case int:
		return strconv.Itoa(v), ""
	case int64:
		return strconv.FormatInt(v, 10), ""
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10), ""
		}
		return "", fmt.Sprintf("%v is not an integer: an imapd.conf value is a string, an integer or a boolean", v)
	}
	kind := fmt.Sprintf("a %T", v)
	switch v.(type) {
	case nil:
		kind = "null"
	case []any:
		kind = "a list"
	case map[string]any:
		kind = "a struct"
	}
	return "", "an imapd.conf value is a string, an integer or a boolean, not " + kind
}

// stringValue is a string option value, trimmed as Cyrus trims it, if
// it can be written on one imapd.conf line.
func stringValue(v string) (string, string) {
	if strings.ContainsAny(v, "\n\r") {
		return "", "an imapd.conf value cannot contain a line break"
	}
	if r, ok := controlChar(v); ok {
		return "", fmt.Sprintf("an imapd.conf value cannot contain the control character %s", strconv.QuoteRune(r))
	}
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", "the value is empty, which Cyrus refuses; remove the option to have Cyrus's default"
	case strings.HasSuffix(v, `\`):
		return "", `an imapd.conf value cannot end in \: Cyrus would join the next line to it`
	case strings.Contains(v, "<<secret:"):
		return "", "an imapd.conf value cannot contain <<secret:: cyrplan marks secrets so, and apply would write the secret here"
	}
	return v, ""
}

// shownValue is an option value as the operator wrote it, for messages.
func shownValue(raw any, val string) string {
	if s, ok := raw.(string); ok {
		return strconv.Quote(s)
	}
	if b, ok := raw.(bool); ok {
		return strconv.FormatBool(b)
	}
	return val
}

// suggest returns the candidate closest to s if it is close enough to
// be a likely typo, or "".
func suggest(s string, candidates []string) string {
	limit := min(3, len(s)/3+1)
	best, bestD := "", limit+1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
