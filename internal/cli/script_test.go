package cli

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "update testscript archives' golden output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		// cyrplan, checking every plan JSON it writes against the schema
		// (see runChecked).
		"cyrplan": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := runChecked(ctx, os.Args[1:], os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScript runs the CLI scenarios in testdata/script. $LAYOUT is the
// example layout of the repository. Besides testscript's commands the
// archives have (see fakehost_test.go):
//
//	sshhosts LAYOUTDIR NAME=NUMBER...  start a fake host per name: a real SSH+SFTP
//	                                   server on a loopback address of its own whose
//	                                   files are $WORK/hosts/NAME; write
//	                                   LAYOUTDIR/hosts.cue, known_hosts and a key
//	hostctl NAME install|down|up|fail|reply|crash|running|stalelock ...
//	                                   change or check a fake host (a Cyrus build,
//	                                   the host off, failing commands, a dead slot)
//	exits CODE PROG [ARGS...]          exec PROG and check its exit status
//
// Every command a fake host runs is logged in
// $WORK/hosts/NAME/.cyrplan-test/commands.log.
func TestScript(t *testing.T) {
	example, err := filepath.Abs("../../layout")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *updateScripts,
		Cmds:                scriptCmds,
		Setup: func(env *testscript.Env) error {
			env.Setenv("LAYOUT", example)
			setupFleet(env)
			return nil
		},
	})
}
