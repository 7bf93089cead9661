package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the layout and print every error with its position",
		Example: `  cyrplan validate --layout ./layout
  ./stores.cue:12:15: stores.store23.replicas[0]: slot slot609 is on host imap6, like slot slot608; a store's slots must be on different hosts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "The layout is valid: %d hosts, %d slots, %d stores.\n", len(l.Hosts), len(l.Slots), len(l.Stores))
			return nil
		},
	}
}
