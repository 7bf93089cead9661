package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
)

// Exit codes of plan --detailed-exitcode and of apply.
const (
	exitChanges = 2 // plan: there are changes
	exitPartial = 3 // apply: some hosts changed, something failed
)

func newPlanCommand(g *globals) *cobra.Command {
	var (
		f        hostFlags
		save     string
		out      output
		asJSON   bool
		detailed bool
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Read the hosts and show what apply would change",
		Long: `plan reads every managed file of every host (one SSH connection per
host), compares it with the rendered layout and prints, per host and
slot, each file to create, update or delete with a unified diff
(secrets redacted), the imapd.conf options that change, drift (files
changed by hand since the last apply), and the service actions that
follow: start a new slot, reload on a config change, restart on a
changed build or listen address, stop a removed slot (its mail is kept).`,
		Example: `  cyrplan plan --layout ./layout --root /tmp/fleet
  cyrplan plan --target store23 --out store23.plan
  cyrplan plan --json --detailed-exitcode   # exit 0 no changes, 1 error, 2 changes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				out.format = "json"
			}
			if err := out.check(); err != nil {
				return err
			}
			pl, err := fleet.Plan(cmd.Context(), f.config(g), fleet.WithSecrets)
			if err != nil {
				return err
			}
			defer pl.Close()
			p := pl.Plan
			if save != "" && p.Dirty {
				fmt.Fprintf(g.stderr, "cyrplan: the layout has uncommitted changes (%s): apply refuses a plan of them unless given --allow-dirty; commit them and plan again\n",
					strings.Join(pl.Rev.Dirty, ", "))
			}
			if err := out.write(g.stdout, p, "plan", "cyrplan plan"); err != nil {
				return err
			}
			if save != "" {
				if err := savePlan(save, p.WriteJSON); err != nil {
					return err
				}
				if out.format == "text" {
					fmt.Fprintf(g.stdout, "Saved the plan to %s; apply it with: cyrplan apply %s\n", save, save)
				}
			}
			if len(p.Problems) > 0 {
				return &exitError{code: exitFailure, err: fmt.Errorf("the plan has %d %s", len(p.Problems), plural(len(p.Problems), "problem", "problems"))}
			}
			if down := len(p.Unreachable()); down > 0 {
				return &exitError{code: exitFailure, err: fmt.Errorf("%d %s could not be read", down, plural(down, "host", "hosts"))}
			}
			if detailed && p.HasChanges() {
				return exitCode(exitChanges)
			}
			return nil
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&save, "out", "", "save the plan to `FILE` for apply (hashes, no secrets)")
	cmd.Flags().StringVar(&out.format, "format", "text", "text, json or markdown (a pull-request comment)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "short for --format json (the format is documented in the README)")
	cmd.Flags().StringVar(&out.artifact, "artifact", "the workflow run's artifacts", "where markdown says the full plan is when it is too long for a comment")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes")
	return cmd
}

// savePlan writes a plan file (readable by its owner only: it names
// hosts and hashes) with write, its JSON writer.
func savePlan(name string, write func(io.Writer) error) error {
	file, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := write(file); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
