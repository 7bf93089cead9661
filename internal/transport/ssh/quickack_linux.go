package ssh

import (
	"net"
	"syscall"
)

// quickAckConn sets TCP_QUICKACK before each Read, so that the kernel
// acknowledges what arrives at once instead of delaying the ACK by up to
// 40 ms. OpenSSH sends small packets with Nagle's algorithm on for
// sessions without a terminal; it waits for that ACK before sending
// more, and every new session stalled ~40 ms without this. Linux clears
// the flag by itself, hence the setsockopt before every read.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

// withQuickAck wraps a TCP connection in a quickAckConn; it returns
// other connections as they are.
func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{Conn: c, raw: raw}
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	// Best effort: a failure only costs latency, and Read reports a
	// broken connection.
	c.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return c.Conn.Read(p)
}
