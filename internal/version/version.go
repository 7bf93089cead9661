// Package version says which cyrplan this is.
package version

import "runtime/debug"

// String is cyrplan's version: the module version it was built as, or
// "(devel)" for a build from a work tree.
func String() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
