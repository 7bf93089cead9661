package plan

import (
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"
)

// CommentLimit is the most characters a GitHub comment holds.
const CommentLimit = 65535

// Marker is the first line of cyrplan's markdown: a bot that finds a
// comment starting with it updates that comment instead of adding one.
func Marker(kind string) string { return "<!-- cyrplan:" + kind + " -->" }

// WriteMarkdown prints the plan as a pull-request comment of at most
// budget characters: a summary table, then one collapsible section per
// host and slot with its diffs. When that is too long it degrades to the
// summary and a pointer to artifact, the full plan kept elsewhere.
func (p *Plan) WriteMarkdown(w io.Writer, kind, title string, budget int, artifact string) error {
	full := p.markdown(kind, title, true, -1, artifact)
	if len(full) <= budget {
		_, err := io.WriteString(w, full)
		return err
	}
	// Summary only, with as many table rows as fit.
	for rows := len(p.rows()); ; rows /= 2 {
		if s := p.markdown(kind, title, false, rows, artifact); len(s) <= budget || rows == 0 {
			_, err := io.WriteString(w, truncate(s, budget))
			return err
		}
	}
}

type mdRow struct {
	host, slot, files, action string
}

func (p *Plan) rows() []mdRow {
	actions := map[string]*ServiceAction{}
	for _, a := range p.Actions {
		actions[a.Host+"/"+a.Slot] = a
	}
	var out []mdRow
	for _, h := range p.Hosts {
		for _, slot := range slotsOf(h, p) {
			var files []string
			for _, f := range h.Files {
				if f.Slot == slot {
					files = append(files, symbol(f.Action)+" "+path.Base(f.Path))
				}
			}
			dirs := 0
			for _, d := range h.Dirs {
				if d.Slot == slot {
					dirs++
				}
			}
			if dirs > 0 {
				files = append(files, fmt.Sprintf("%d %s", dirs, plural(dirs, "directory", "directories")))
			}
			action := "none"
			if a := actions[h.Host+"/"+slot]; a != nil {
				action = string(a.Verb)
			}
			out = append(out, mdRow{h.Host, slot, strings.Join(files, ", "), action})
		}
	}
	return out
}

// markdown renders the comment; maxRows < 0 means every row.
func (p *Plan) markdown(kind, title string, details bool, maxRows int, artifact string) string {
	var b strings.Builder
	b.WriteString(Marker(kind) + "\n")
	fmt.Fprintf(&b, "### %s\n\n", title)
	if p.Commit != "" {
		fmt.Fprintf(&b, "Layout commit `%s`", short(p.Commit))
		if p.Dirty {
			b.WriteString(" with uncommitted changes")
		}
		b.WriteString("\n\n")
	}
	if !p.HasChanges() {
		b.WriteString("**" + p.NoChanges(kind) + "**\n")
		p.markdownProblems(&b)
		return b.String()
	}
	fmt.Fprintf(&b, "**%s**\n\n", p.Summary.Line())
	rows := p.rows()
	b.WriteString("| host | slot | files | action |\n|---|---|---|---|\n")
	for i, r := range rows {
		if maxRows >= 0 && i >= maxRows {
			fmt.Fprintf(&b, "| … | %d more | | |\n", len(rows)-i)
			break
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.host, r.slot, r.files, r.action)
	}
	if p.Summary.Drift > 0 {
		fmt.Fprintf(&b, "\n:warning: **Drift:** %d %s changed on the hosts by hand; this puts back the layout's version.\n", p.Summary.Drift, plural(p.Summary.Drift, "file", "files"))
	}
	p.markdownProblems(&b)
	if !details {
		fmt.Fprintf(&b, "\n> The full %s does not fit in a comment (%d characters at most): see %s.\n", kind, CommentLimit, artifact)
		return b.String()
	}
	actions := map[string]*ServiceAction{}
	for _, a := range p.Actions {
		actions[a.Host+"/"+a.Slot] = a
	}
	for _, h := range p.Hosts {
		for _, slot := range slotsOf(h, p) {
			summary := fmt.Sprintf("<b>%s</b> %s", h.Host, slot)
			if a := actions[h.Host+"/"+slot]; a != nil {
				summary += fmt.Sprintf(": %s (%s)", a.Verb, a.Reason)
			}
			fmt.Fprintf(&b, "\n<details><summary>%s</summary>\n\n", summary)
			for _, f := range h.Files {
				if f.Slot != slot {
					continue
				}
				line := fmt.Sprintf("- `%s %s`", symbol(f.Action), f.Path)
				if f.Drift {
					line += " (drift)"
				}
				b.WriteString(line + "\n")
				for _, o := range f.Options {
					switch {
					case o.Added:
						fmt.Fprintf(&b, "  - `%s`: added `%s`\n", o.Key, o.After)
					case o.Gone:
						fmt.Fprintf(&b, "  - `%s`: removed (was `%s`)\n", o.Key, o.Before)
					default:
						fmt.Fprintf(&b, "  - `%s`: `%s` → `%s`\n", o.Key, o.Before, o.After)
					}
				}
			}
			for _, f := range h.Files {
				if f.Slot == slot && f.Diff != "" {
					fmt.Fprintf(&b, "\n````diff\n%s````\n", strings.TrimPrefix(dropDiffLine(f.Diff), "\n"))
				}
			}
			b.WriteString("\n</details>\n")
		}
	}
	return b.String()
}

func (p *Plan) markdownProblems(b *strings.Builder) {
	if down := p.Unreachable(); len(down) > 0 {
		b.WriteString("\n:warning: **Hosts that could not be read** (nothing is planned for them):\n\n")
		for _, h := range down {
			fmt.Fprintf(b, "- %s\n", h.Error)
		}
	}
	if len(p.Problems) == 0 {
		return
	}
	b.WriteString("\n:x: **Problems** (apply refuses until they are fixed):\n\n")
	for _, pr := range p.Problems {
		fmt.Fprintf(b, "- %s\n", pr)
	}
}

// dropDiffLine removes go-internal's leading "diff a b" line.
func dropDiffLine(d string) string {
	if strings.HasPrefix(d, "diff ") {
		if i := strings.IndexByte(d, '\n'); i >= 0 {
			return d[i+1:]
		}
	}
	return d
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
