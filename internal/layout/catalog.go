package layout

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// The imapd.conf option catalogs, one per Cyrus version
// (catalog/<version>.tsv): every option with its type, allowed values,
// default and deprecation, from the lib/imapoptions of that release.
// Columns, tab separated: name, type, allowed values (comma separated,
// "a=b" for a value b that is a deprecated spelling of a), default
// (NULL: unset), since, deprecated since, replaced by.
//
//go:embed catalog/*.tsv
var catalogFS embed.FS

// The types of imapd.conf options, as lib/imapoptions names them.
const (
	typeSwitch     = "SWITCH"
	typeInt        = "INT"
	typeString     = "STRING"
	typeEnum       = "ENUM"       // exactly one of the values
	typeStringList = "STRINGLIST" // exactly one of the values
	typeBitfield   = "BITFIELD"   // a space-separated list of the values
	typeDuration   = "DURATION"
	typeByteSize   = "BYTESIZE"
)

// optionSpec is one option of a catalog.
type optionSpec struct {
	Name       string
	Type       string
	Values     []string          // the allowed values of ENUM, STRINGLIST and BITFIELD
	Aliases    map[string]string // deprecated spelling -> the value it stands for
	Default    string            // "" when unset
	Deprecated string            // the version that deprecated it, or ""
	ReplacedBy string            // the option to use instead, or ""
}

// catalog is the imapd.conf options one Cyrus version knows.
type catalog struct {
	Version  string
	Options  map[string]*optionSpec
	families []*optionSpec // names ending in -name stand for name-<anything>
}

var (
	catalogOnce sync.Once
	catalogs    map[string]*catalog
)

func loadCatalogs() {
	catalogs = map[string]*catalog{}
	entries, _ := catalogFS.ReadDir("catalog")
	for _, e := range entries {
		data, _ := catalogFS.ReadFile("catalog/" + e.Name())
		version := strings.TrimSuffix(e.Name(), ".tsv")
		cat, err := parseCatalog(version, data)
		if err != nil {
			panic(fmt.Sprintf("embedded catalog/%s: %v", e.Name(), err)) // a bug: tests load every catalog
		}
		catalogs[version] = cat
	}
}

// parseCatalog reads a catalog in the format of catalog/*.tsv.
func parseCatalog(version string, data []byte) (*catalog, error) {
	cat := &catalog{Version: version, Options: map[string]*optionSpec{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("line %d: %d columns, want 7", n, len(f))
		}
		o := &optionSpec{Name: f[0], Type: f[1], Default: f[3], Deprecated: f[5], ReplacedBy: f[6]}
		if o.Default == "NULL" {
			o.Default = ""
		}
		switch o.Type {
		case typeEnum, typeStringList, typeBitfield:
			o.Values, o.Aliases = parseValues(f[2])
			if len(o.Values) == 0 {
				return nil, fmt.Errorf("line %d: %s %s has no values", n, o.Type, o.Name)
			}
		case typeSwitch, typeInt, typeString, typeDuration, typeByteSize:
		default:
			return nil, fmt.Errorf("line %d: option %s has unknown type %q", n, o.Name, o.Type)
		}
		if _, dup := cat.Options[o.Name]; dup {
			return nil, fmt.Errorf("line %d: option %s listed twice", n, o.Name)
		}
		cat.Options[o.Name] = o
		if strings.HasSuffix(o.Name, "-name") {
			cat.families = append(cat.families, o)
		}
	}
	return cat, sc.Err()
}

// parseValues splits "a,b=c" into the values [a b] and the alias c of b.
func parseValues(s string) ([]string, map[string]string) {
	var values []string
	aliases := map[string]string{}
	for v := range strings.SplitSeq(s, ",") {
		names := strings.Split(v, "=")
		if names[0] == "" {
			continue
		}
		values = append(values, names[0])
		for _, alias := range names[1:] {
			aliases[alias] = names[0]
		}
	}
	return values, aliases
}

func catalogFor(version string) *catalog {
	catalogOnce.Do(loadCatalogs)
	return catalogs[version]
}

func catalogVersions() []string {
	catalogOnce.Do(loadCatalogs)
	return slices.Sorted(maps.Keys(catalogs))
}

// saslOption is what cyrplan knows of an option of the sasl_* family
// that the catalog does not list: Cyrus hands those to the SASL library.
var saslOption = &optionSpec{Name: "sasl_*", Type: typeString}

// lookup returns the option key names, or nil if Cyrus does not know it:
// an option of the catalog, of a family of it (partition-<name>), a
// service's copy of one (imap_allowplaintext), or a SASL option.
func (c *catalog) lookup(key string) *optionSpec {
	if o := c.Options[key]; o != nil {
		return o
	}
	for _, o := range c.families {
		prefix := strings.TrimSuffix(o.Name, "name")
		if rest, ok := strings.CutPrefix(key, prefix); ok && wildcardRE.MatchString(rest) {
			return o
		}
	}
	for _, svc := range Services {
		if rest, ok := strings.CutPrefix(key, svc+"_"); ok && c.Options[rest] != nil {
			return c.Options[rest]
		}
	}
	if strings.HasPrefix(key, "sasl_") && wildcardRE.MatchString(key) {
		return saslOption
	}
	return nil
}

// names returns the options worth suggesting for a misspelt one: all
// but the deprecated ones, sorted.
func (c *catalog) names() []string {
	var out []string
	for name, o := range c.Options {
		if o.Deprecated == "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// CatalogDiff lists the imapd.conf options Cyrus version to knows and
// version from does not (added), and the other way round (removed);
// known is false when cyrplan has no catalog of one of them.
func CatalogDiff(from, to string) (added, removed []string, known bool) {
	a, b := catalogFor(from), catalogFor(to)
	if a == nil || b == nil {
		return nil, nil, false
	}
	for name := range b.Options {
		if a.Options[name] == nil {
			added = append(added, name)
		}
	}
	for name := range a.Options {
		if b.Options[name] == nil {
			removed = append(removed, name)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed, true
}
