package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/version"
)

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print cyrplan's version",
		Example: "  cyrplan version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "cyrplan %s\n", version.String())
			return nil
		},
	}
}
