package cli

import (
	"fmt"
	"io"

	"github.com/cyrplan/cyrplan/internal/plan"
)

// output is how plan and diff print: --format text|json|markdown (plan
// also has --json, short for --format json).
type output struct {
	format   string
	artifact string
}

func (o *output) check() error {
	switch o.format {
	case "text", "json", "markdown":
		return nil
	}
	return fmt.Errorf("--format %s: use text, json or markdown", o.format)
}

func (o *output) write(w io.Writer, p *plan.Plan, kind, title string) error {
	switch o.format {
	case "json":
		return p.WriteJSON(w)
	case "markdown":
		return p.WriteMarkdown(w, kind, title, plan.CommentLimit, o.artifact)
	}
	p.WriteText(w, kind)
	return nil
}
