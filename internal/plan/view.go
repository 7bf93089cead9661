package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// WriteText prints the plan for a terminal or a CI log: per host and
// slot, each file with a unified diff, the imapd.conf options that
// change, the service action; then drift, actions in order, problems,
// and a closing summary line.
// kind is "plan" (of hosts) or "diff" (of two layouts). It writes
// through one buffer: a plan of 10,000 slots is 100,000 lines, not one
// system call each.
func (p *Plan) WriteText(out io.Writer, kind string) {
	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	header := "Layout: not in git"
	if p.Commit != "" {
		header = "Layout: commit " + short(p.Commit)
		if p.Dirty {
			header += " with uncommitted changes"
		}
	}
	if len(p.Targets) > 0 {
		header += " · targets: " + strings.Join(p.Targets, ", ")
	}
	if len(p.Excludes) > 0 {
		header += " · excluding: " + strings.Join(p.Excludes, ", ")
	}
	fmt.Fprintln(w, header)

	actions := map[string]*ServiceAction{}
	for _, a := range p.Actions {
		actions[a.Host+"/"+a.Slot] = a
	}
	for _, h := range p.Hosts {
		if !h.Read || !h.NeedsWork {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", h.Host)
		if len(slotsOf(h, p)) == 0 {
			fmt.Fprintf(w, "  manifest: records the %s cyrplan manages here (%s); no file changes\n",
				plural(len(h.Manifest.Slots), "slot", "slots"), strings.Join(h.Manifest.Slots, ", "))
		}
		for _, slot := range slotsOf(h, p) {
			a := actions[h.Host+"/"+slot]
			line := "  " + slot
			if role, ok := h.Slots[slot]; ok {
				line += fmt.Sprintf(" (%s)", role)
			}
			if a != nil {
				line += fmt.Sprintf(": %s, %s", a.Verb, a.Reason)
			}
			fmt.Fprintln(w, line)
			for _, f := range h.Files {
				if f.Slot == slot {
					writeFile(w, f)
				}
			}
			var dirs []string
			for _, d := range h.Dirs {
				if d.Slot == slot {
					dirs = append(dirs, fmt.Sprintf("%s %s (%04o %s:%s)", symbol(d.Action), d.Path, uint32(d.Mode), d.Owner, d.Group))
				}
			}
			if len(dirs) > 0 {
				fmt.Fprintf(w, "    directories:\n")
				for _, d := range dirs {
					fmt.Fprintf(w, "      %s\n", d)
				}
			}
			for _, r := range h.Roles {
				if r.Slot == slot {
					fmt.Fprintf(w, "    role: starts as %s\n", r.Role)
				}
			}
		}
	}

	if p.Summary.Drift > 0 {
		fmt.Fprintf(w, "\nDrift: %d %s changed on the hosts since cyrplan last wrote %s; this plan puts back the layout's version:\n",
			p.Summary.Drift, plural(p.Summary.Drift, "file", "files"), plural(p.Summary.Drift, "it", "them"))
		for _, h := range p.Hosts {
			for _, f := range h.Files {
				if f.Drift {
					fmt.Fprintf(w, "  %s:%s\n", h.Host, f.Path)
				}
			}
		}
	}
	if len(p.Actions) > 0 {
		fmt.Fprintln(w, "\nActions, in order (store by store, replicas before masters):")
		for i, a := range p.Actions {
			who := a.Slot
			if a.Store != "" {
				who += " of " + a.Store
			}
			fmt.Fprintf(w, "  %2d. %-7s %s on %s, as %s: %s\n", i+1, a.Verb, who, a.Host, a.Role, a.Reason)
		}
	}
	if down := p.Unreachable(); len(down) > 0 {
		fmt.Fprintln(w, "\nHosts that could not be read (nothing is planned for them; apply changes the others):")
		for _, h := range down {
			fmt.Fprintf(w, "  %s\n", h.Error)
		}
	}
	if len(p.Problems) > 0 {
		fmt.Fprintln(w, "\nProblems (apply refuses this plan until they are fixed):")
		for _, pr := range p.Problems {
			fmt.Fprintf(w, "  %s\n", pr)
		}
	}
	fmt.Fprintln(w)
	if !p.HasChanges() {
		fmt.Fprintln(w, p.NoChanges(kind))
		return
	}
	fmt.Fprintln(w, p.Summary.Line())
	if down := len(p.Unreachable()); down > 0 {
		fmt.Fprintf(w, "Read %d of %d hosts: the plan covers only those.\n", p.Summary.Hosts-down, p.Summary.Hosts)
	}
}

// NoChanges is what a plan without changes says, honestly: which hosts
// it read, or for a diff that the two revisions render the same.
func (p *Plan) NoChanges(kind string) string {
	down := len(p.Unreachable())
	switch {
	case kind == "diff":
		return "No changes. Both revisions render the same tree."
	case down == 0:
		return "No changes. The hosts match the layout."
	case down == p.Summary.Hosts:
		return fmt.Sprintf("No host could be read (%d in scope): this plan covers none of them.", down)
	}
	return fmt.Sprintf("No changes on the %d of %d hosts read; %d could not be read (above): this plan covers only the hosts read.",
		p.Summary.Hosts-down, p.Summary.Hosts, down)
}

// Line is the closing line of a plan.
func (s Summary) Line() string {
	return fmt.Sprintf("Plan: %d %s to add, %d to change, %d to remove; %s, %s, %s, %s.",
		s.Add, plural(s.Add, "slot", "slots"), s.Change, s.Remove,
		count(s.Starts, "start", "starts"), count(s.Restarts, "restart", "restarts"),
		count(s.Reloads, "reload", "reloads"), count(s.Stops, "stop", "stops"))
}

func writeFile(w io.Writer, f *FileChange) {
	line := fmt.Sprintf("    %s %s", symbol(f.Action), f.Path)
	switch {
	case f.Action == Create:
		line += fmt.Sprintf(" (%04o %s:%s)", uint32(f.Mode), f.Owner, f.Group)
	case f.Action == Update && len(f.Secrets) > 0 && f.Diff == "":
		line += " (secret " + strings.Join(f.Secrets, ", ") + " changed)"
	case f.Action == Update && f.Diff == "":
		line += fmt.Sprintf(" (mode to %04o)", uint32(f.Mode))
	}
	if f.Drift {
		switch f.Action {
		case Create:
			line += " [drift: removed on the host]"
		default:
			line += " [drift: changed on the host]"
		}
	}
	fmt.Fprintln(w, line)
	for _, o := range f.Options {
		switch {
		case o.Added:
			fmt.Fprintf(w, "        + %s: %s\n", o.Key, o.After)
		case o.Gone:
			fmt.Fprintf(w, "        - %s: %s\n", o.Key, o.Before)
		default:
			fmt.Fprintf(w, "        ~ %s: %s => %s\n", o.Key, o.Before, o.After)
		}
	}
	if f.Diff != "" {
		for _, dl := range strings.Split(strings.TrimRight(dropDiffLine(f.Diff), "\n"), "\n") {
			fmt.Fprintf(w, "        %s\n", dl)
		}
	}
}

func symbol(a Action) string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Delete:
		return "-"
	}
	return " "
}

// slotsOf returns the slots of h that the plan touches, sorted.
func slotsOf(h *Host, p *Plan) []string {
	seen := map[string]bool{}
	for _, f := range h.Files {
		seen[f.Slot] = true
	}
	for _, d := range h.Dirs {
		seen[d.Slot] = true
	}
	for _, r := range h.Roles {
		seen[r.Slot] = true
	}
	for _, a := range p.Actions {
		if a.Host == h.Host {
			seen[a.Slot] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// WriteJSON writes the plan in its versioned JSON form.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Read decodes a plan written by WriteJSON, refusing other formats.
func Read(r io.Reader) (*Plan, error) {
	var p Plan
	if err := json.NewDecoder(r).Decode(&p); err != nil {
		return nil, fmt.Errorf("not a cyrplan plan: %w", err)
	}
	if p.Format != Format {
		if p.Format < Format {
			return nil, fmt.Errorf("plan format %d, made by an older cyrplan; this cyrplan applies format %d: make the plan again", p.Format, Format)
		}
		return nil, fmt.Errorf("plan format %d; this cyrplan reads format %d: make the plan again", p.Format, Format)
	}
	return &p, nil
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func count(n int, one, many string) string { return fmt.Sprintf("%d %s", n, plural(n, one, many)) }
