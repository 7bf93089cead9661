// Package shell writes values into /bin/sh command lines and scripts.
package shell

import "strings"

// Quote quotes s as one word for /bin/sh: whatever s holds, the shell
// reads it back as the same bytes and runs nothing of it.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
