package local

import (
	"maps"
	"slices"
)

// SetReadHook makes ReadFile call f between the fstat of the file it
// opened and the read, until restore is called.
func SetReadHook(f func()) (restore func()) {
	testHookRead = f
	return func() { testHookRead = nil }
}

// Dirty returns the directories the next Sync syncs.
func (h *Host) Dirty() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.dirty))
}
