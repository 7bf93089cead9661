package local

// SetReadHook makes ReadFile call f between the fstat of the file it
// opened and the read, until restore is called.
func SetReadHook(f func()) (restore func()) {
	testHookRead = f
	return func() { testHookRead = nil }
}

// NewThroughRoot is New, resolving every path through the os.Root as on
// a kernel without openat2.
func NewThroughRoot(root, name string) *Host {
	h := New(root, name)
	h.throughRoot = true
	return h
}

// Dirty says whether the next Sync has renames to make durable.
func (h *Host) Dirty() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dirty
}
