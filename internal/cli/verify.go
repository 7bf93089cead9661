package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/report"
)

func newVerifyCommand(g *globals) *cobra.Command {
	var (
		f      hostFlags
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "verify STORE... | --all",
		Short: "Prove that replicas hold what their masters hold, mailbox by mailbox",
		Long: `verify logs in over IMAP, as the layout's replication user (an admin),
to the current master of each store and to each of its replicas, and
compares every mailbox: UIDVALIDITY, the message count, UIDNEXT and
HIGHESTMODSEQ, and, where the counts differ, the Message-Ids. It lists
every mailbox that differs and how. Stores are compared in parallel
(--parallelism at once). The result is kept on the master's host, and
status shows it.

` + nagiosHelp + `
  2 CRITICAL  a replica differs from its master, or could not be read
  3 UNKNOWN   the check could not run (a bad layout or flag, say)`,
		Example: "  cyrplan verify store23\n  cyrplan verify --all --parallelism 8",
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.root != "" {
				return unknownf("verify needs SSH hosts and running slots; --root runs none")
			}
			if all == (len(args) > 0) {
				return unknownf("name the stores to verify, or --all")
			}
			l, err := g.load()
			if err != nil {
				return unknown(err)
			}
			stores := args
			if all {
				stores = l.StoreNames()
			}
			for _, s := range stores {
				if l.Stores[s] == nil {
					return unknownf("%s is not a store of the layout", s)
				}
			}
			pr := newProgress(g.stderr, "verify: stores compared")
			res, err := fleet.Verify(cmd.Context(), f.config(g), l, stores, fleet.VerifyOptions{Progress: pr.step})
			pr.done()
			if err != nil {
				return unknown(err)
			}
			level := report.OK
			for _, v := range res {
				if v.Failed() || v.Divergent() > 0 {
					level = report.Critical
				}
			}
			if asJSON {
				if err := writeJSON(g.stdout, res); err != nil {
					return unknown(err)
				}
			} else {
				printVerify(g.stdout, res, painterFor(g.stdout), level)
			}
			return exitCode(int(level))
		},
	}
	nagiosFlagErrors(cmd)
	f.addConnect(cmd.Flags())
	cmd.Flags().BoolVar(&all, "all", false, "verify every store of the layout")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printVerify(w io.Writer, res []*report.Verify, p painter, level report.Level) {
	var bad []string
	for _, v := range res {
		if v.Error != "" {
			fmt.Fprintln(w, p.level(report.Critical, fmt.Sprintf("%s: not compared: %s", v.Store, v.Error)))
			bad = append(bad, v.Store)
			continue
		}
		for _, c := range v.Replicas {
			head := fmt.Sprintf("%s: %s -> %s: %d %s", v.Store, v.Master, c.Replica, v.Mailboxes, plural(v.Mailboxes, "mailbox", "mailboxes"))
			switch {
			case c.Error != "":
				fmt.Fprintln(w, p.level(report.Critical, head+", replica not read: "+c.Error))
			case len(c.Divergent) == 0:
				fmt.Fprintln(w, head+", "+p.level(report.OK, "identical"))
			default:
				fmt.Fprintln(w, p.level(report.Critical, fmt.Sprintf("%s, %d %s", head, len(c.Divergent), plural(len(c.Divergent), "differs", "differ"))))
				for _, m := range c.Divergent {
					fmt.Fprintf(w, "  %s: %s\n", m.Name, strings.Join(m.What, "; "))
				}
			}
			if c.Error != "" || len(c.Divergent) > 0 {
				bad = append(bad, v.Store)
			}
		}
	}
	bad = slices.Compact(bad)
	if len(bad) == 0 {
		fmt.Fprintf(w, "\n%s\n", p.level(level, fmt.Sprintf("OK: %d %s verified", len(res), plural(len(res), "store", "stores"))))
		return
	}
	fmt.Fprintf(w, "\n%s\n", p.level(level, fmt.Sprintf("CRITICAL: %d of %d %s %s: %s", len(bad), len(res), plural(len(res), "store", "stores"), plural(len(bad), "differs", "differ"), strings.Join(bad, ", "))))
}
