package plan

import (
	"bufio"
	"bytes"
	"maps"
	"slices"
	"strings"
)

// optionChanges summarises an imapd.conf change by option name, sorted.
func optionChanges(before, after []byte) []OptionChange {
	b, a := parseOptions(before), parseOptions(after)
	var out []OptionChange
	for _, k := range slices.Sorted(maps.Keys(b)) {
		av, ok := a[k]
		switch {
		case !ok:
			out = append(out, OptionChange{Key: k, Before: b[k], Gone: true})
		case av != b[k]:
			out = append(out, OptionChange{Key: k, Before: b[k], After: av})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[k]; !ok {
			out = append(out, OptionChange{Key: k, After: a[k], Added: true})
		}
	}
	return out
}

func parseOptions(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
