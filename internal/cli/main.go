// Package cli is cyrplan's command line: one file per command, each a
// thin layer that parses flags, calls the packages that do the work, and
// prints. Errors are printed once, here, and mapped to exit codes here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/fleet"
	"github.com/cyrplan/cyrplan/internal/layout"
)

// Exit codes shared by all commands; plan and apply add their own.
const (
	exitOK      = 0
	exitFailure = 1
)

// exitError carries a specific exit code. A nil err means the command
// already printed what it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode ends a command with code, nothing more to print.
func exitCode(code int) error { return &exitError{code: code} }

// globals are the flags every command has.
type globals struct {
	layoutDir string
	stdout    io.Writer
	stderr    io.Writer
}

// Main runs cyrplan with os.Args and returns the process exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs cyrplan with args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return printError(stderr, err)
}

// printError prints err once and returns its exit code: the code an
// exitError carries (status and verify end with "unknown" when they
// cannot run), else exitFailure.
func printError(stderr io.Writer, err error) int {
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	var lerrs layout.Errors
	switch {
	case errors.As(err, &lerrs):
		dir, _ := os.Getwd()
		fmt.Fprint(stderr, lerrs.Format(dir))
		fmt.Fprintf(stderr, "cyrplan: the layout has %d %s\n", len(lerrs), plural(len(lerrs), "error", "errors"))
	case ee != nil && ee.err == nil:
	default:
		fmt.Fprintf(stderr, "cyrplan: %v\n", err)
	}
	return code
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "cyrplan",
		Short: "Plan and apply the configuration of a fleet of Cyrus IMAP slots from one CUE layout",
		Long: `cyrplan compiles a CUE layout of hosts, slots and stores into every
Cyrus config file, init script and unit of every host, shows the
difference with what the hosts hold, and applies it safely.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&g.layoutDir, "layout", ".", "the layout directory (a CUE package)")
	root.AddCommand(
		newValidateCommand(g),
		newRenderCommand(g),
		newShowCommand(g),
		newSpreadCommand(g),
		newSimulateCommand(g),
		newPlanCommand(g),
		newApplyCommand(g),
		newDiffCommand(g),
		newStatusCommand(g),
		newRunCommand(g),
		newLocateCommand(g),
		newVerifyCommand(g),
		newServeCommand(g),
		newFailoverCommand(g),
		newDrainCommand(g),
		newFailbackCommand(g),
		newUpgradeCommand(g),
		newMoveCommand(g),
		newUnlockCommand(g),
		newVersionCommand(g),
	)
	return root
}

// load loads the layout named by --layout.
func (g *globals) load(opts ...layout.Option) (*layout.Layout, error) {
	return fleet.LoadLayout(g.layoutDir, opts...)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
