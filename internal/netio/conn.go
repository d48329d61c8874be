package netio

import (
	"net"
	"syscall"
)

// Conn is a connection's socket as its owner holds it: the connection, its
// raw socket, its descriptor for the Parker, and its write turn.
type Conn struct {
	net.Conn
	// Raw is the plain TCP socket for direct writes and shallow reads; nil
	// for TLS and on other platforms.
	Raw syscall.RawConn
	// FD is the socket's descriptor for the Parker; 0 when it cannot park.
	FD int
	// Turn writes on it.
	Turn
}

// Open sets c up on nc for src (before c is shared): park says whether it
// may park (a Parker is used and CanPark); the turn's other settings come
// from tc, whose Conn and Raw it fills.
func (c *Conn) Open(nc net.Conn, src Source, park bool, tc TurnConfig) {
	c.Conn, c.Raw = nc, RawConn(nc)
	if c.Raw != nil && park && CanPark {
		_ = c.Raw.Control(func(fd uintptr) { c.FD = int(fd) })
	}
	tc.Conn, tc.Raw = nc, c.Raw
	c.Turn.Init(src, tc)
}
