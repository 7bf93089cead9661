package layout

import (
	"reflect"

	"cuelang.org/go/cue"
)

// raw* mirror the schema for decoding; the checker turns them into the
// exported types.
type rawLayout struct {
	Domain       string              `json:"domain"`
	Cyrus        map[string]rawBuild `json:"cyrus"`
	DefaultCyrus string              `json:"defaultCyrus"`
	Hosts        map[string]rawHost  `json:"hosts"`
	Slots        map[string]rawSlot  `json:"slots"`
	Stores       map[string]rawStore `json:"stores"`
	Imapd        map[string]any      `json:"imapd"`
	Replication  struct {
		Authname string `json:"authname"`
		Password string `json:"password"`
	} `json:"replication"`
	Secrets  map[string]rawSecret `json:"secrets"`
	Ports    rawPorts             `json:"ports"`
	Failover struct {
		MaxPerHost int `json:"maxPerHost"`
	} `json:"failover"`
}

type rawSecret struct {
	Env string `json:"env"`
}

type rawBuild struct {
	Prefix  string `json:"prefix"`
	Version string `json:"version"`
}

type rawHost struct {
	Number    int    `json:"number"`
	Address   string `json:"address"`
	Interface string `json:"interface"`
	SSH       struct {
		User string `json:"user"`
		Port int    `json:"port"`
	} `json:"ssh"`
}

type rawSlot struct {
	Meta  string   `json:"meta"`
	Data  string   `json:"data"`
	Ports rawPorts `json:"ports"`
}

type rawPorts struct {
	IMAP int `json:"imap"`
	Sync int `json:"sync"`
}

type rawStore struct {
	Master   string   `json:"master"`
	Replicas []string `json:"replicas"`
	Cyrus    string   `json:"cyrus"`
	IP       struct {
		Master  string `json:"master"`
		Replica string `json:"replica"`
	} `json:"ip"`
	Imapd map[string]any `json:"imapd"`
}

// decode fills raw from v. When the layout has schema errors (valid is
// false) it decodes field by field and leaves out the fields that do not
// decode, so that the cross-checks still run on the rest and every
// mistake is reported in one run. It returns the paths of those fields,
// dotted: "hosts.imap3.address", "hosts.*" for a section that is not a
// struct.
func decode(v cue.Value, valid bool, raw *rawLayout) (bad []string) {
	if valid && v.Decode(raw) == nil {
		return nil
	}
	decodeFields(v, reflect.ValueOf(raw).Elem(), "", &bad)
	return bad
}

// fieldName returns the name of a regular field; ok is false for other
// selectors (a pattern, an index), which have none.
func fieldName(sel cue.Selector) (name string, ok bool) {
	if !sel.IsString() {
		return "", false
	}
	return sel.Unquoted(), true
}

// decodeFields decodes v into dst field by field (a struct by its json
// names, a map entry by entry), descending into what does not decode
// whole, and appends the paths of the fields that are missing, of the
// wrong type or in conflict to bad.
func decodeFields(v cue.Value, dst reflect.Value, path string, bad *[]string) {
	if v.Validate(cue.Concrete(true)) == nil && v.Decode(dst.Addr().Interface()) == nil {
		return
	}
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch dst.Kind() {
	case reflect.Struct:
		// A struct with an error below may not list its fields, but
		// still has them.
		found := false
		for i := range dst.NumField() {
			name := jsonName(dst.Type().Field(i))
			if f := v.LookupPath(cue.MakePath(cue.Str(name))); f.Exists() {
				found = true
				decodeFields(f, dst.Field(i), join(name), bad)
			}
		}
		if _, err := v.Fields(); err != nil && !found {
			*bad = append(*bad, path) // not a struct
		}
	case reflect.Map:
		it, err := v.Fields()
		if err != nil {
			*bad = append(*bad, path, join("*"))
			return
		}
		dst.Set(reflect.MakeMap(dst.Type()))
		for it.Next() {
			name, ok := fieldName(it.Selector())
			if !ok {
				continue
			}
			elem := reflect.New(dst.Type().Elem()).Elem()
			decodeFields(it.Value(), elem, join(name), bad)
			if n := len(*bad); n > 0 && (*bad)[n-1] == join(name) {
				continue // nothing of it decoded: leave it out
			}
			dst.SetMapIndex(reflect.ValueOf(name), elem)
		}
	default:
		*bad = append(*bad, path)
	}
}
