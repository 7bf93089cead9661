//go:build !linux

package ssh

import "net"

// withQuickAck returns c: TCP_QUICKACK exists on Linux only.
func withQuickAck(c net.Conn) net.Conn { return c }
