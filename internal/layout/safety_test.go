package layout_test

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cyrplan/cyrplan/internal/render"
)

// The properties every rendered tree of a layout that loads must have,
// whatever its values: what the fuzz target and the injection corpus
// assert.

var (
	// imapdLineRE is one option line of imapd.conf: a name Cyrus reads,
	// a value that is not empty.
	imapdLineRE = regexp.MustCompile(`^[a-z0-9_-]+: \S`)
	// shellAssignRE is a variable assignment at the top of an init script.
	shellAssignRE = regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=(.*)$`)
	// shellWordRE is a shell word that expands nothing: characters that
	// are not special, single-quoted text and escaped single quotes.
	shellWordRE = regexp.MustCompile(`^([A-Za-z0-9/._:+%@,=-]|'[^']*'|\\')*$`)
)

// checkTree returns what is unsafe in a rendered tree, or "".
func checkTree(tree *render.Tree) string {
	for _, name := range tree.HostNames() {
		for _, f := range tree.Hosts[name].Files {
			if msg := checkFile(f); msg != "" {
				return fmt.Sprintf("%s:%s: %s", name, f.Path, msg)
			}
		}
	}
	return ""
}

func checkFile(f render.File) string {
	content := string(f.Content)
	if !utf8.ValidString(content) {
		return "not UTF-8"
	}
	for i, line := range strings.Split(content, "\n") {
		if msg := checkLine(f.Kind, line); msg != "" {
			return fmt.Sprintf("line %d: %s: %q", i+1, msg, line)
		}
	}
	return ""
}

func checkLine(kind render.Kind, line string) string {
	for _, r := range line {
		if unicode.IsControl(r) && r != '\t' {
			return "a control character"
		}
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return ""
	}
	switch kind {
	case render.IMAPDConf:
		if !imapdLineRE.MatchString(line) {
			return "not an option line"
		}
		if strings.HasSuffix(line, `\`) {
			return "ends in \\ (Cyrus joins the next line to it)"
		}
	case render.InitScript:
		if m := shellAssignRE.FindStringSubmatch(line); m != nil && !shellWordRE.MatchString(m[2]) {
			return "an assignment whose value the shell would expand"
		}
	case render.CyrusConf:
		if strings.ContainsAny(line, `\'`) || strings.Count(line, `"`)%2 != 0 {
			return "quoting cyrus.conf does not read"
		}
	}
	return ""
}
