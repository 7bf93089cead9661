package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/render"
	"github.com/cyrplan/cyrplan/internal/treedir"
)

func newRenderCommand(g *globals) *cobra.Command {
	var out, check string
	cmd := &cobra.Command{
		Use:   "render (--out DIR | --check DIR)",
		Short: "Write the rendered tree to DIR/<host>/<path>, or compare DIR with it",
		Long: `render --out writes the rendered tree into DIR, which must be missing (it is
created), empty, or a directory render --out wrote before: it keeps the
list of the files it wrote in DIR/` + treedir.Marker + `, removes only those
that the layout no longer renders, and never deletes or overwrites any
other file. render --check compares DIR with the rendered tree.`,
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
				return g.renderOut(out, t)
			}
			d, err := treedir.Diff(check, t)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w; render it first: cyrplan render --layout %s --out %s", err, g.layoutDir, check)
			}
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
	cmd.Flags().StringVar(&out, "out", "", "write the rendered tree into `DIR`, new, empty or rendered before (only files it wrote before are removed)")
	cmd.Flags().StringVar(&check, "check", "", "compare `DIR` with the rendered tree")
	return cmd
}

// renderOut writes t into dir and says what it did, and which files of
// dir it did not write (it leaves them alone).
func (g *globals) renderOut(dir string, t *render.Tree) error {
	if err := treedir.Write(dir, t); err != nil {
		return err
	}
	n := 0
	for _, h := range t.Hosts {
		n += len(h.Files)
	}
	fmt.Fprintf(g.stdout, "Rendered %d files for %d hosts into %s.\n", n, len(t.Hosts), dir)
	foreign, err := treedir.Foreign(dir)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		const show = 5
		more := ""
		if len(foreign) > show {
			more = fmt.Sprintf(" and %d more", len(foreign)-show)
			foreign = foreign[:show]
		}
		fmt.Fprintf(g.stderr, "cyrplan: %s also holds files cyrplan did not write, left alone: %s%s\n", dir, strings.Join(foreign, ", "), more)
	}
	return nil
}
