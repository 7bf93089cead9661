package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/operation"
)

// opFlags are the flags of the commands that plan an operation.
type opFlags struct {
	hostFlags
	autoApprove bool
	save        string
	format      string
	asJSON      bool
	noCanary    bool
}

func (o *opFlags) add(cmd *cobra.Command) {
	o.addConnect(cmd.Flags())
	cmd.Flags().BoolVar(&o.autoApprove, "auto-approve", false, "run the operation at once")
	cmd.Flags().StringVar(&o.save, "out", "", "save the operation plan to `FILE` for cyrplan apply FILE")
	cmd.Flags().StringVar(&o.format, "format", "text", "text, json or markdown")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "short for --format json")
	cmd.Flags().BoolVar(&o.noCanary, "no-canary", false, "plan no canary gate (where no message can be appended through the floating address)")
}

// operation plans op, shows or saves it, and runs it with --auto-approve.
func (g *globals) operation(cmd *cobra.Command, o *opFlags, op fleet.Op) error {
	if o.asJSON {
		o.format = "json"
	}
	c := o.config(g)
	op.NoCanary = o.noCanary
	again := op.Words()
	p, err := fleet.PlanOperation(cmd.Context(), c, op)
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		if err := p.WriteJSON(g.stdout); err != nil {
			return err
		}
	case "markdown":
		p.WriteMarkdown(g.stdout)
	case "text":
		p.WriteText(g.stdout)
	default:
		return fmt.Errorf("--format %s: use text, json or markdown", o.format)
	}
	if o.save != "" {
		if err := savePlan(o.save, p.WriteJSON); err != nil {
			return err
		}
		if o.format == "text" {
			fmt.Fprintf(g.stdout, "Saved the operation to %s; run it with: cyrplan apply %s\n", o.save, o.save)
		}
	}
	if len(p.Steps) == 0 {
		return nil
	}
	if !o.autoApprove {
		if o.save == "" && o.format == "text" {
			fmt.Fprintf(g.stdout, "To run it: cyrplan %s --auto-approve (or save it with --out FILE and run cyrplan apply FILE).\n", again)
		}
		return nil
	}
	fmt.Fprintf(g.stdout, "\nRunning (operation %s):\n", p.ID)
	return fleet.RunOperation(cmd.Context(), c, p, g.stdout, "cyrplan "+again+" --auto-approve (it plans what is left)")
}

// applyOperation runs a saved operation plan.
func (g *globals) applyOperation(cmd *cobra.Command, f *hostFlags, file string, data []byte) error {
	p, err := operation.Decode(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	p.WriteText(g.stdout)
	fmt.Fprintf(g.stdout, "\nRunning (operation %s):\n", p.ID)
	return fleet.RunOperation(cmd.Context(), f.config(g), p, g.stdout, "cyrplan apply "+file)
}
