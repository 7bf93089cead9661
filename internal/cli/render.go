package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/treedir"
)

func newRenderCommand(g *globals) *cobra.Command {
	var out, check string
	cmd := &cobra.Command{
		Use:   "render (--out DIR | --check DIR)",
		Short: "Write the rendered tree to DIR/<host>/<path>, or compare DIR with it",
		Example: `  cyrplan render --layout ./layout --out ./golden
  cyrplan render --layout ./layout --check ./golden   # exit 1 and a diff if golden/ is stale`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (out == "") == (check == "") {
				return errors.New("render needs exactly one of --out DIR and --check DIR")
			}
			l, err := g.load()
			if err != nil {
				return err
			}
			t := render.Render(l)
			if out != "" {
				if err := treedir.Write(out, t); err != nil {
					return err
				}
				n := 0
				for _, h := range t.Hosts {
					n += len(h.Files)
				}
				fmt.Fprintf(g.stdout, "Rendered %d files for %d hosts into %s.\n", n, len(t.Hosts), out)
				return nil
			}
			d, err := treedir.Diff(check, t)
			if err != nil {
				return err
			}
			if d != "" {
				fmt.Fprint(g.stdout, d)
				return &exitError{code: exitFailure, err: fmt.Errorf("%s differs from the rendered layout; run: cyrplan render --layout %s --out %s", check, g.layoutDir, check)}
			}
			fmt.Fprintf(g.stdout, "%s matches the rendered layout.\n", check)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the rendered tree into `DIR` (files not in the tree are removed)")
	cmd.Flags().StringVar(&check, "check", "", "compare `DIR` with the rendered tree")
	return cmd
}
