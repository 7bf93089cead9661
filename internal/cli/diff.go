package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/gitops"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/plan"
	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/state"
	"github.com/cyrplan/cyrplan/internal/version"
)

func newDiffCommand(g *globals) *cobra.Command {
	var (
		base, head string
		out        output
		asJSON     bool
		detailed   bool
	)
	cmd := &cobra.Command{
		Use:   "diff --base REV [--head REV]",
		Short: "Show how the rendered tree changes between two revisions of the layout",
		Long: `diff renders the layout at two git revisions, straight from git objects
(no checkout), and shows which hosts, slots and files change, with a
unified diff per file (secrets redacted), the imapd.conf options that
change, and the service actions an apply would take. The head defaults
to the working tree. Revisions are branch names, tags, HEAD~1 or commit
ids. It reads no host: it compares two rendered trees.

Exit status: 0, 1 error, 2 changes (with --detailed-exitcode).`,
		Example: `  cyrplan diff --base main
  cyrplan diff --base origin/main --head HEAD --format markdown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" {
				return errors.New("diff needs --base REV")
			}
			if asJSON {
				out.format = "json"
			}
			if err := out.check(); err != nil {
				return err
			}
			repo, err := gitops.Open(g.layoutDir)
			if err != nil {
				return fmt.Errorf("%s: %w", g.layoutDir, err)
			}
			lb, baseID, err := layoutAt(repo, base)
			if err != nil {
				return err
			}
			var lh *layout.Layout
			headName, headID := "working tree", ""
			if head != "" {
				headName = head
				if lh, headID, err = layoutAt(repo, head); err != nil {
					return err
				}
			} else if lh, err = g.load(); err != nil {
				return err
			}
			tb, th := render.Render(lb), render.Render(lh)
			obs := map[string]*state.Host{}
			for _, h := range th.HostNames() {
				obs[h] = state.FromTree(tb, h)
			}
			scope, err := plan.NewScope(lh, nil, nil)
			if err != nil {
				return err
			}
			p := plan.Build(plan.Input{Layout: lh, Tree: th, Observed: obs, Scope: scope, Commit: headID,
				Labels: [2]string{base, headName}, Version: version.String()})
			title := fmt.Sprintf("cyrplan diff: %s (%s) → %s", base, short(baseID), headName)
			if err := out.write(g.stdout, p, "diff", title); err != nil {
				return err
			}
			if detailed && p.HasChanges() {
				return exitCode(exitChanges)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&base, "base", "", "the revision to compare from (branch, tag, HEAD~1, commit)")
	cmd.Flags().StringVar(&head, "head", "", "the revision to compare to (default: the working tree)")
	cmd.Flags().StringVar(&out.format, "format", "text", "text, json or markdown (a pull-request comment)")
	cmd.Flags().StringVar(&out.artifact, "artifact", "the workflow run's artifacts", "where markdown says the full diff is when it is too long for a comment")
	cmd.Flags().BoolVar(&asJSON, "json", false, "short for --format json")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the rendered tree changes")
	return cmd
}

// layoutAt loads the layout as it is at rev.
func layoutAt(repo *gitops.Repo, rev string) (*layout.Layout, string, error) {
	id, err := repo.Resolve(rev)
	if err != nil {
		return nil, "", err
	}
	fsys, err := repo.FS(id)
	if err != nil {
		return nil, "", err
	}
	l, err := layout.LoadFS(fsys, rev+":"+repo.Subdir())
	var lerrs layout.Errors
	if errors.As(err, &lerrs) {
		return nil, "", fmt.Errorf("the layout at %s (%s) is invalid:\n%s", rev, short(id), lerrs.Format(""))
	}
	return l, id, err
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
