package layout

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Cyrus keeps integers and durations in a C int: past these it wraps.
const (
	maxCyrusInt = 0x7fffffff
	minCyrusInt = -0x7fffffff
)

// check returns why val, as written to imapd.conf, is not a value Cyrus
// accepts for o, or "". shown is the value as the operator wrote it.
func (o *optionSpec) check(val, shown string) string {
	switch o.Type {
	case typeSwitch:
		return checkSwitch(val, shown)
	case typeInt:
		return checkInt(val, shown)
	case typeDuration:
		return checkDuration(val, shown)
	case typeByteSize:
		return checkByteSize(val, shown)
	case typeEnum:
		return o.checkOneOf(enumValue(val), shown)
	case typeStringList:
		return o.checkOneOf(val, shown)
	case typeBitfield:
		return o.checkBitfield(val, shown)
	}
	return ""
}

// switchValues are the spellings of a switch that cyrplan accepts: the
// ones imapd.conf(5) documents (Cyrus itself looks at the first letters
// only, so that "nonsense" would be no).
var switchValues = []string{"yes", "no", "on", "off", "true", "false", "1", "0", "t", "f"}

func checkSwitch(val, shown string) string {
	if slices.Contains(switchValues, val) {
		return ""
	}
	return shown + " is not a switch: use true or false (or yes/no, on/off, 1/0)"
}

var intRE = regexp.MustCompile(`^[+-]?[0-9]+$`)

func checkInt(val, shown string) string {
	if !intRE.MatchString(val) {
		return shown + " is not an integer"
	}
	digits := strings.TrimLeft(val, "+-")
	if len(digits) > 1 && digits[0] == '0' {
		return shown + ": Cyrus reads a number with a leading 0 as octal; write it without the 0"
	}
	if n, err := strconv.ParseInt(val, 10, 64); err != nil || n > maxCyrusInt || n < minCyrusInt {
		return fmt.Sprintf("%s is out of range: Cyrus's integers are from %d to %d", shown, minCyrusInt, maxCyrusInt)
	}
	return ""
}

// checkDuration accepts what Cyrus's config_parseduration does: an
// optional -, then numbers each followed by a unit d, h, m or s, the last
// one optionally bare (in the option's default unit), like 30, 30s, 5m,
// 1h30m or 2d. Unlike Cyrus it wants at least one digit, and a total
// that fits Cyrus's int.
func checkDuration(val, shown string) string {
	const want = " is not a duration: use a number with a unit d, h, m or s, like 30s, 5m, 1h30m or 2d (a bare number is in the option's default unit)"
	s := strings.TrimPrefix(val, "-")
	const tooLarge = " is out of range: Cyrus keeps durations in seconds, at most 2147483647"
	total, n, digits := int64(0), int64(0), 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= '0' && ch <= '9' {
			n = n*10 + int64(ch-'0')
			digits++
			if n > maxCyrusInt {
				return shown + tooLarge
			}
			continue
		}
		unit := strings.IndexByte("smhd", ch)
		if unit < 0 || digits == 0 {
			return shown + want
		}
		total += n * []int64{1, 60, 3600, 86400}[unit]
		n, digits = 0, 0
		if total > maxCyrusInt {
			return shown + tooLarge
		}
	}
	if s == "" {
		return shown + want
	}
	return ""
}

// byteSizeRE is what Cyrus's config_parsebytesize accepts: a number, an
// optional space, an optional K, M or G (or Ki, Mi, Gi), an optional B.
var byteSizeRE = regexp.MustCompile(`^[+-]?[0-9]+ ?([KkMmGg][Ii]?)?[Bb]?$`)

func checkByteSize(val, shown string) string {
	if byteSizeRE.MatchString(val) {
		return ""
	}
	return shown + " is not a byte size: use a number with an optional K, M or G, like 512K or 2M"
}

// enumValue is val as Cyrus reads an ENUM value: the spellings of a
// switch stand for on and off.
func enumValue(val string) string {
	switch val {
	case "1", "yes", "t", "true":
		return "on"
	case "0", "no", "f", "false":
		return "off"
	}
	return val
}

func (o *optionSpec) checkOneOf(val, shown string) string {
	if slices.Contains(o.Values, val) {
		return ""
	}
	if to, ok := o.Aliases[val]; ok {
		return fmt.Sprintf("%s is a deprecated spelling: use %s", shown, to)
	}
	return fmt.Sprintf("%s is not one of %s", shown, strings.Join(o.Values, ", "))
}

func (o *optionSpec) checkBitfield(val, shown string) string {
	for _, v := range strings.Fields(val) {
		if slices.Contains(o.Values, v) {
			continue
		}
		if to, ok := o.Aliases[v]; ok {
			return fmt.Sprintf("%s: %s is a deprecated spelling: use %s", shown, v, to)
		}
		return fmt.Sprintf("%s: %q is not one of %s (the value is a space-separated list of them)", shown, v, strings.Join(o.Values, ", "))
	}
	return ""
}
