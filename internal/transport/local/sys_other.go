//go:build !linux

package local

import "os"

// openBeneath is openat2(2), which only Linux has: elsewhere every path
// goes through os.Root.
func openBeneath(int, string, int) (int, bool, error) { return -1, false, nil }

// syncEachFile: without syncfs(2), WriteFiles syncs each temporary file
// as it writes it.
const syncEachFile = true

// syncFS syncs the host directory d; the files were synced one by one.
func syncFS(d *os.File) error { return d.Sync() }
