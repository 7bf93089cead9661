package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
)

func newFailoverCommand(g *globals) *cobra.Command {
	var (
		o     opFlags
		to    string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "failover STORE [--to SLOT] [--force] [--auto-approve | --out FILE]",
		Short: "Plan (and with --auto-approve run) moving a store's master role to another of its slots",
		Long: `failover plans a switchover as ordered steps, each with the gate it must
pass: stop the current master (no more writes), drain its replication
log to the slot it promotes (gate: the log is empty), record the new
roles on both hosts, restart the promoted slot as master (it takes the
store's floating master address and announces it with a gratuitous ARP;
gate: its banner answers) and start the old master as its replica (gate:
its banner). It prints the plan; --auto-approve runs it at once, --out
FILE saves it for cyrplan apply FILE. Each step done is recorded on its
host: an operation that stops (SIGINT, SIGKILL, a host lost) resumes
from the first step not done when run again.

Without --to it promotes the preferred master when the store runs
backwards (so running it twice moves a store there and back), else the
first replica. --force goes on when the current master's host is down:
nothing can be drained, and what it had not replicated may be lost. That
host's slot does not start as a second master when it comes back
(fencing); cyrplan failover STORE --to <the new master> brings it back as
replica.`,
		Example: `  cyrplan failover store23
  cyrplan failover store23 --to slot608 --auto-approve
  cyrplan failover store23 --out f.json && cyrplan apply f.json
  cyrplan failover store23 --force --auto-approve   # imap6 is down`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			again := fleet.Op{Kind: "failover", Store: args[0], To: to, Force: force}
			return g.operation(cmd, &o, again)
		},
	}
	o.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "the `SLOT` to promote")
	cmd.Flags().BoolVar(&force, "force", false, "go on although the current master's host does not answer")
	return cmd
}

func newDrainCommand(g *globals) *cobra.Command {
	var o opFlags
	cmd := &cobra.Command{
		Use:   "drain HOST [--auto-approve | --out FILE]",
		Short: "Plan (and with --auto-approve run) failovers of every store whose master is on HOST",
		Long: `drain plans the failover of every store whose current master is on
HOST, store by store, each to the replica cyrplan simulate --down HOST
chooses, so that the masters spread over many hosts within
failover.maxPerHost. Run it before taking a host out of service;
cyrplan failback HOST brings the stores back afterwards.`,
		Example: "  cyrplan drain imap6\n  cyrplan drain imap6 --auto-approve",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := fleet.Op{Kind: "drain", Host: args[0]}
			return g.operation(cmd, &o, op)
		},
	}
	o.add(cmd)
	return cmd
}

func newFailbackCommand(g *globals) *cobra.Command {
	var (
		o   opFlags
		all bool
	)
	cmd := &cobra.Command{
		Use:   "failback (HOST | --all) [--auto-approve | --out FILE]",
		Short: "Plan (and with --auto-approve run) moving stores running backwards back to their preferred masters",
		Long: `failback plans the failover of every store that runs backwards (its
current master is not its preferred master) back to its preferred
master: with HOST, those whose preferred master is on HOST; with --all,
every one.`,
		Example: "  cyrplan failback imap6 --auto-approve\n  cyrplan failback --all",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == all {
				return errors.New("failback needs a HOST or --all")
			}
			op := fleet.Op{Kind: "failback"}
			if len(args) == 1 {
				op.Host = args[0]
			}
			return g.operation(cmd, &o, op)
		},
	}
	o.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every store running backwards")
	return cmd
}

func newUpgradeCommand(g *globals) *cobra.Command {
	var (
		o     opFlags
		all   bool
		waves int
	)
	cmd := &cobra.Command{
		Use:   "upgrade (STORE | --all [--waves N]) [--auto-approve | --out FILE]",
		Short: "Plan (and with --auto-approve run) a rolling upgrade of stores to the Cyrus builds the layout pins",
		Long: `upgrade moves a store whose cyrus pin changed in the layout to the new
build through replication, never with both of its slots down: the
replica is upgraded (its files written, restarted; gate: its banner),
the store switches over to it while the old master stays stopped, the
old master is upgraded and started as replica, and the store switches
back to its preferred master. A change to an older Cyrus is refused: a
master would replicate to an older Cyrus. The plan says which
imapd.conf options the two Cyrus versions do not share.

--all upgrades every store whose slots run another build than the one
the layout pins, --waves N stores at a time; the first failed step or
gate stops the operation once the stores of its wave have stopped.`,
		Example: "  cyrplan upgrade store23\n  cyrplan upgrade --all --waves 4 --auto-approve",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == all {
				return errors.New("upgrade needs a STORE or --all")
			}
			op := fleet.Op{Kind: "upgrade", Waves: waves}
			if len(args) == 1 {
				op.Store = args[0]
			}
			return g.operation(cmd, &o, op)
		},
	}
	o.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every store whose build changed")
	cmd.Flags().IntVar(&waves, "waves", 1, "with --all: stores upgraded at a time")
	return cmd
}

func newMoveCommand(g *globals) *cobra.Command {
	var (
		o        opFlags
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "move STORE --from SLOT --to SLOT [--auto-approve | --out FILE]",
		Short: "Plan (and with --auto-approve run) moving a store's replica to another slot, creating before destroying",
		Long: `move takes a store's replica from one slot to another (a new drive unit
or host) once the layout lists the new slot in place of the old one:
the new slot is created and started as an additional replica, the
master replicates to both, every user is copied to the new slot
(sync_client -A; gate: its log is empty), the master then replicates to
the new slot only, and the old slot is stopped and its config removed.
Its mail data stays on its host, for the operator to reclaim. The
current master is not moved this way: fail it over first.`,
		Example: "  cyrplan move store23 --from slot308 --to slot508\n  cyrplan move store23 --from slot308 --to slot508 --auto-approve",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || to == "" {
				return errors.New("move needs --from SLOT and --to SLOT")
			}
			op := fleet.Op{Kind: "move", Store: args[0], From: from, To: to}
			return g.operation(cmd, &o, op)
		},
	}
	o.add(cmd)
	cmd.Flags().StringVar(&from, "from", "", "the replica `SLOT` that left the layout")
	cmd.Flags().StringVar(&to, "to", "", "the replica `SLOT` the layout lists in its place")
	return cmd
}
