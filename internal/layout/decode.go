package layout

import (
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

// decode fills raw from v. When the layout has type errors (valid is
// false) it decodes entry by entry and leaves out the broken entries, so
// that the cross-checks still run on the rest and every mistake is
// reported in one run.
func decode(v cue.Value, valid bool, raw *rawLayout) (broken map[string]bool) {
	broken = map[string]bool{}
	if valid && v.Decode(raw) == nil {
		return broken
	}
	field := func(name string, dst any) {
		f := v.LookupPath(cue.MakePath(cue.Str(name)))
		if f.Exists() && f.Validate(cue.Concrete(true)) == nil {
			_ = f.Decode(dst) // validated: cannot fail
		}
	}
	field("domain", &raw.Domain)
	field("defaultCyrus", &raw.DefaultCyrus)
	field("replication", &raw.Replication)
	field("ports", &raw.Ports)
	field("failover", &raw.Failover)
	field("imapd", &raw.Imapd)
	raw.Cyrus = decodeEach[rawBuild](v, "cyrus", broken)
	raw.Hosts = decodeEach[rawHost](v, "hosts", broken)
	raw.Slots = decodeEach[rawSlot](v, "slots", broken)
	raw.Stores = decodeEach[rawStore](v, "stores", broken)
	raw.Secrets = decodeEach[rawSecret](v, "secrets", broken)
	return broken
}

// decodeEach decodes the entries of a section; the ones that fail are
// recorded in broken as "section.name" (and "section" itself; a section
// that is not a struct as "section.*"), so that references to them do
// not raise a second, misleading error.
func decodeEach[T any](v cue.Value, section string, broken map[string]bool) map[string]T {
	out := map[string]T{}
	it, err := v.LookupPath(cue.MakePath(cue.Str(section))).Fields()
	if err != nil {
		// Not a struct: the schema has said so.
		broken[section] = true
		broken[section+".*"] = true
		return out
	}
	for it.Next() {
		var x T
		name := it.Selector().Unquoted()
		if it.Value().Validate(cue.Concrete(true)) == nil && it.Value().Decode(&x) == nil {
			out[name] = x
		} else {
			broken[section] = true
			broken[section+"."+name] = true
		}
	}
	return out
}
