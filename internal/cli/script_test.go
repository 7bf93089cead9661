package cli

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "update testscript archives' golden output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"cyrplan": func() { os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs the CLI scenarios in testdata/script. $LAYOUT is the
// example layout of the repository.
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
		Setup: func(env *testscript.Env) error {
			env.Setenv("LAYOUT", example)
			return nil
		},
	})
}
