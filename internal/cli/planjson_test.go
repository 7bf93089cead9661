package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cyrplan/cyrplan/internal/plan"
)

// exitBadPlanJSON is the exit status of the test wrapper of cyrplan when
// a plan JSON it wrote does not match the schema.
const exitBadPlanJSON = 99

// runChecked runs cyrplan as Run does, and checks every plan JSON the
// command writes against internal/plan/plan.schema.json: the standard
// output of plan and diff with --json or --format json, and the file of
// plan --out. A document that does not match is reported on stderr and
// the exit status is 99, whatever cyrplan's was.
func runChecked(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	toStdout, file := planJSONOutputs(args)
	var out bytes.Buffer
	if toStdout {
		stdout = io.MultiWriter(stdout, &out)
	}
	var before os.FileInfo
	if file != "" {
		before, _ = os.Stat(file)
	}
	code := Run(ctx, args, stdout, stderr)
	bad := func(what string, err error) {
		fmt.Fprintf(stderr, "cyrplan (test wrapper): %s: plan JSON does not match internal/plan/plan.schema.json: %v\n", what, err)
		code = exitBadPlanJSON
	}
	// A plan or diff that failed before it printed has no document.
	if toStdout && out.Len() > 0 {
		if err := checkPlanJSON(out.Bytes()); err != nil {
			bad("stdout", err)
		}
	}
	// Only a file this run wrote: a plan that failed before saving
	// leaves what was there.
	if file != "" {
		after, err := os.Stat(file)
		if err == nil && (before == nil || !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size()) {
			data, err := os.ReadFile(file)
			if err == nil {
				err = checkPlanJSON(data)
			}
			if err != nil {
				bad(file, err)
			}
		}
	}
	return code
}

// planJSONOutputs parses args as cyrplan does and says where the command
// writes a plan JSON: to stdout (plan or diff, --json or --format json)
// and to a file (plan --out FILE). A command line cyrplan refuses writes
// none.
func planJSONOutputs(args []string) (stdout bool, file string) {
	root := newRootCommand(&globals{stdout: io.Discard, stderr: io.Discard})
	cmd, rest, err := root.Find(args)
	if err != nil || (cmd.Name() != "plan" && cmd.Name() != "diff") {
		return false, ""
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return false, ""
	}
	if help, _ := cmd.Flags().GetBool("help"); help {
		return false, ""
	}
	asJSON, _ := cmd.Flags().GetBool("json")
	format, _ := cmd.Flags().GetString("format")
	if cmd.Name() == "plan" {
		file, _ = cmd.Flags().GetString("out")
	}
	return asJSON || format == "json", file
}

var planSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	const url = "https://github.com/cyrplan/cyrplan/internal/plan/plan.schema.json"
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(plan.Schema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
})

// checkPlanJSON validates one plan JSON document against the schema.
func checkPlanJSON(data []byte) error {
	sch, err := planSchema()
	if err != nil {
		return fmt.Errorf("the schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(inst)
}

func TestPlanJSONOutputs(t *testing.T) {
	tests := []struct {
		args   []string
		stdout bool
		file   string
	}{
		{[]string{"plan", "--json"}, true, ""},
		{[]string{"plan", "--layout", "layout", "--format", "json", "--out", "p.json"}, true, "p.json"},
		{[]string{"--layout=layout", "plan", "--format=json"}, true, ""},
		{[]string{"plan", "--out=p.json", "--format", "markdown"}, false, "p.json"},
		{[]string{"plan", "--layout", "layout"}, false, ""},
		{[]string{"diff", "--base", "main", "--json"}, true, ""},
		{[]string{"diff", "--base", "main", "--format", "text"}, false, ""},
		{[]string{"show", "store", "store23", "--json"}, false, ""},
		{[]string{"status", "--json"}, false, ""},
		{[]string{"render", "--out", "tree"}, false, ""},
		{[]string{"plan", "--json", "--no-such-flag"}, false, ""},
	}
	for _, tt := range tests {
		stdout, file := planJSONOutputs(tt.args)
		if stdout != tt.stdout || file != tt.file {
			t.Errorf("%q: stdout %v, file %q; want %v, %q", tt.args, stdout, file, tt.stdout, tt.file)
		}
	}
}
