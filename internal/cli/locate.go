package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/spf13/cobra"
)

func newLocateCommand(g *globals) *cobra.Command {
	var f hostFlags
	cmd := &cobra.Command{
		Use:   "locate USER",
		Short: "Find the store that holds a user's mailbox",
		Long: `locate asks the current master of every store, in parallel, whether it
holds user/USER (Cyrus's mbpath), and prints the store, its current
master slot and host, and its replicas.`,
		Example: "  cyrplan locate brong",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.root != "" {
				return errors.New("locate needs SSH hosts; --root runs no commands")
			}
			l, err := g.load()
			if err != nil {
				return err
			}
			found, err := fleet.Locate(cmd.Context(), f.config(g), l, args[0])
			if err != nil {
				return err
			}
			var reps []string
			for _, r := range found.Replicas {
				reps = append(reps, fmt.Sprintf("%s on %s", r, l.Slots[r].Host))
			}
			fmt.Fprintf(g.stdout, "%s is on %s: master %s on %s; replicas %s\n", args[0], found.Store, found.Master,
				l.Slots[found.Master].Host, strings.Join(reps, ", "))
			return nil
		},
	}
	f.addConnect(cmd.Flags())
	return cmd
}
