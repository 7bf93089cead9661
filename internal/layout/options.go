package layout

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The imapd.conf option catalogs, one per Cyrus version, from
// `cyr_info conf-default` of that version: "name: default" lines.
//
//go:embed catalog/*.txt
var catalogFS embed.FS

var (
	catalogOnce sync.Once
	catalogs    map[string]map[string]bool
)

func loadCatalogs() {
	catalogs = map[string]map[string]bool{}
	entries, _ := catalogFS.ReadDir("catalog")
	for _, e := range entries {
		data, _ := catalogFS.ReadFile("catalog/" + e.Name())
		opts := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if name, _, ok := strings.Cut(sc.Text(), ":"); ok {
				opts[strings.TrimSpace(name)] = true
			}
		}
		catalogs[strings.TrimSuffix(e.Name(), ".txt")] = opts
	}
}

func catalogFor(version string) map[string]bool {
	catalogOnce.Do(loadCatalogs)
	return catalogs[version]
}

func catalogVersions() []string {
	catalogOnce.Do(loadCatalogs)
	return slices.Sorted(maps.Keys(catalogs))
}

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

// checkOptions checks and formats imapd.conf options against build's
// catalog. If store is set the options are the layout-wide ones checked
// again for that store's build, and only unknown names are reported.
func (c *checker) checkOptions(p []string, raw map[string]any, build *Build, store string) Options {
	out := Options{}
	var catalog map[string]bool
	if build != nil {
		catalog = catalogFor(build.Version)
	}
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		kp := append(p[:len(p):len(p)], key)
		if store == "" {
			if why, ok := owned(key); ok {
				c.labelErrorf(kp, "option %s is set by cyrplan (%s); remove it from the layout", key, why)
				continue
			}
		}
		if catalog != nil && !known(catalog, key) {
			e := c.labelErrorf(kp, "Cyrus %s has no imapd.conf option %s", build.Version, key)
			if store != "" {
				e.Msg += " (store " + store + " runs build " + build.Name + ")"
			}
			if s := suggest(key, slices.Sorted(maps.Keys(catalog))); s != "" {
				e.Hint = "did you mean " + s + "?"
				if _, ok := owned(s); ok {
					// Do not send the operator to an error.
					e.Hint += " cyrplan sets " + s + " itself; remove this option"
				}
			}
			continue
		}
		if store != "" {
			continue
		}
		val, err := optionValue(raw[key])
		if err != "" {
			c.errorf(kp, "%s", err)
			continue
		}
		out[key] = val
	}
	return out
}

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
	return "", false
}

func known(catalog map[string]bool, key string) bool {
	if catalog[key] || strings.HasPrefix(key, "sasl_") {
		return true
	}
	for _, svc := range Services {
		if rest, ok := strings.CutPrefix(key, svc+"_"); ok && catalog[rest] {
			return true
		}
	}
	return false
}

func optionValue(v any) (string, string) {
	switch v := v.(type) {
	case string:
		if strings.ContainsAny(v, "\n\r") {
			return "", "an imapd.conf value cannot contain a line break"
		}
		return strings.TrimSpace(v), ""
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
