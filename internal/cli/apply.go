package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/apply"
	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/health"
	"github.com/cyrplan/cyrplan/internal/operation"
	"github.com/cyrplan/cyrplan/internal/plan"
)

func newApplyCommand(g *globals) *cobra.Command {
	var (
		f           hostFlags
		autoApprove bool
		allowDirty  bool
		healthWait  time.Duration
		keep        int
	)
	cmd := &cobra.Command{
		Use:   "apply [FILE | --auto-approve]",
		Short: "Change the hosts to match the layout: a saved plan, or plan and apply at once",
		Long: `apply takes each host's lock and plans again; a saved plan is applied only
while that plan is exactly the saved one (the same hosts, files and
hashes, roles, actions in the same order, targets, layout and rendered
result), and refused otherwise, naming each difference. It reaches the
hosts the way the plan did (--root is recorded in the plan). Then, on
each host, it records the actions it will run as pending, writes every
file atomically keeping the previous version under
/var/lib/cyrplan/backup, records the manifest, and starts, reloads,
restarts or stops slots store by store, replicas before masters,
checking each slot's IMAP banner. A slot whose check fails gets its
previous files back and is restarted, and the apply stops.

Secrets are read from the environment (see secrets in the layout) and
never written to plans or logs; a changed secret is rolled out.

Exit status: 0 done, 1 failed before changing anything, 3 partial (some
hosts changed, something failed: run apply again once it is fixed).`,
		Example: `  cyrplan plan --out fleet.plan && cyrplan apply fleet.plan
  CYRPLAN_SECRET_REPLICATION=... cyrplan apply --auto-approve --target store23
  cyrplan apply --auto-approve --root /tmp/fleet`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == autoApprove {
				return errors.New("apply needs a saved plan FILE or --auto-approve (to plan and apply at once)")
			}
			var saved *plan.Plan
			if len(args) == 1 {
				if len(f.targets) > 0 || len(f.excludes) > 0 {
					return errors.New("a saved plan applies to its own targets: give no --target or --exclude")
				}
				data, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				if operation.IsOperation(data) {
					return g.applyOperation(cmd, &f, args[0], data)
				}
				if saved, err = plan.Read(bytes.NewReader(data)); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			s, err := fleet.Begin(cmd.Context(), f.config(g), saved, allowDirty)
			if err != nil {
				return err
			}
			defer s.Close()
			if s.AppliedBy != "" {
				fmt.Fprintf(g.stdout, "The plan %s was applied already (apply %s): nothing to do.\n", saved.ID, s.AppliedBy)
				return nil
			}
			p := s.Plan
			if saved == nil {
				p.WriteText(g.stdout, "plan")
			}
			if len(p.Problems) > 0 {
				return fmt.Errorf("refusing to apply a plan with problems:\n  %s", strings.Join(p.Problems, "\n  "))
			}
			if !p.HasChanges() && len(s.Hosts.Errs) == 0 {
				fmt.Fprintln(g.stdout, "Nothing to apply.")
				return nil
			}
			fmt.Fprintf(g.stdout, "\nApplying (apply %s):\n", s.ApplyID)
			o := fleet.ApplyOptions{Log: g.stdout, HealthTimeout: healthWait, KeepBackups: keep}
			if f.root == "" && p.Transport.Kind != "local" {
				o.Health = health.Banner
			}
			return applyResult(g, s.Execute(cmd.Context(), o))
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "plan and apply without a saved plan")
	cmd.Flags().BoolVar(&allowDirty, "allow-dirty", false, "apply although the layout has uncommitted changes")
	cmd.Flags().IntVar(&keep, "keep-backups", 10, "keep the previous files of this many applies under /var/lib/cyrplan/backup (older ones are removed)")
	cmd.Flags().DurationVar(&healthWait, "health-timeout", 30*time.Second, "how long a slot may take to greet with its banner after a start, reload or restart")
	return cmd
}

func applyResult(g *globals, res *apply.Result) error {
	if res.Err() == nil && res.Stopped == nil {
		fmt.Fprintf(g.stdout, "\nApply complete: %d %s changed.\n", len(res.Changed), plural(len(res.Changed), "host", "hosts"))
		return nil
	}
	why := errors.Join(res.Err(), res.Stopped)
	if len(res.Changed) == 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("apply failed before changing anything:\n%v", indent(why))}
	}
	//lint:ignore ST1005 printed as it is: sentences, the last one says what to do
	return &exitError{code: exitPartial, err: fmt.Errorf("apply partly done: %d %s changed (%s), and:\n%v\nFix the cause and run apply again: it converges.",
		len(res.Changed), plural(len(res.Changed), "host", "hosts"), strings.Join(res.Changed, ", "), indent(why))}
}

func indent(err error) string {
	if err == nil {
		return ""
	}
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
