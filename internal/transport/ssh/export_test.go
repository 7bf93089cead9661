package ssh

// WithQuickAck exports withQuickAck to the tests of package ssh_test.
var WithQuickAck = withQuickAck
