package plan

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/cyrplan/cyrplan/internal/render"
)

var update = flag.Bool("update", false, "rewrite testdata/*.md from the current output")

// TestMarkdownGolden: a small change reads as a summary table and one
// collapsible section per changed slot, with the option summary and
// the diff.
func TestMarkdownGolden(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	l.Stores["store23"].Imapd["quota_db"] = "skiplist"
	p := build(t, l, obs)
	p.Commit = "0123456789abcdef0123456789abcdef01234567"
	var b bytes.Buffer
	if err := p.WriteMarkdown(&b, "plan", "cyrplan plan", CommentLimit, "the cyrplan-plan artifact"); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/store23-quota.md"
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/plan -run Markdown -update writes it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("markdown differs from %s (-update rewrites it):\n%s", golden, diff.Diff(golden, want, "got", b.Bytes()))
	}
}

// TestMarkdownBudget: a plan far too long for one comment degrades to
// the summary and a pointer to the artifact, within the budget, for a
// range of budgets.
func TestMarkdownBudget(t *testing.T) {
	l := example(t)
	obs := applied(render.Render(l))
	// Every slot's imapd.conf changes, with a long value: the full
	// markdown is far over a GitHub comment.
	l.Imapd["motd"] = strings.Repeat("a long message of the day ", 200)
	p := build(t, l, obs)
	var full bytes.Buffer
	if err := p.WriteMarkdown(&full, "plan", "cyrplan plan", 1<<30, "the artifact"); err != nil {
		t.Fatal(err)
	}
	if full.Len() <= CommentLimit {
		t.Fatalf("the full markdown is %d bytes: the test needs more than %d", full.Len(), CommentLimit)
	}
	for _, budget := range []int{CommentLimit, 4000, 1500, 600, 100} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			var b bytes.Buffer
			if err := p.WriteMarkdown(&b, "plan", "cyrplan plan", budget, "the cyrplan-plan artifact of run 42"); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if len(out) > budget {
				t.Errorf("%d bytes; the budget is %d", len(out), budget)
			}
			if !utf8.ValidString(out) {
				t.Error("cut inside a character")
			}
			if !strings.HasPrefix(out, Marker("plan")+"\n") {
				t.Errorf("does not start with the marker:\n%.200s", out)
			}
			if strings.Contains(out, "<details>") {
				t.Error("the degraded comment still holds diffs")
			}
			if budget >= 1500 {
				for _, want := range []string{p.Summary.Line(), "see the cyrplan-plan artifact of run 42", "| imap3 | slot301 |"} {
					if !strings.Contains(out, want) {
						t.Errorf("lacks %q:\n%s", want, out)
					}
				}
			}
		})
	}
}
