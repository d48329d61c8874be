package netio

import (
	"crypto/tls"
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
	// TLS is the connection's TLS layer when it has one (tls.go): its
	// bytes are read and written through it, never on the socket.
	TLS *tls.Conn
	// Under is the TCP socket under TLS, only to ask whether it holds
	// bytes (Readable); nil for plain TCP and on other platforms.
	Under syscall.RawConn
	// FD is the socket's descriptor for the Parker (under TLS, the TCP
	// socket's); 0 when it cannot park.
	FD int
	// Turn writes on it.
	Turn
}

// Open sets c up on nc for src (before c is shared): park says whether it
// may park (a Parker is used and CanPark); the turn's other settings come
// from tc, whose Conn, Raw and Under it fills. Over TLS the turn writes
// through the TLS connection (tls.go).
func (c *Conn) Open(nc net.Conn, src Source, park bool, tc TurnConfig) {
	c.Conn, c.Raw = nc, RawConn(nc)
	sock := c.Raw
	if t, ok := nc.(*tls.Conn); ok {
		c.TLS, c.Under = t, RawConn(t.NetConn())
		sock = c.Under
	}
	if sock != nil && park && CanPark {
		_ = sock.Control(func(fd uintptr) { c.FD = int(fd) })
	}
	tc.Conn, tc.Raw, tc.Under = nc, c.Raw, c.Under
	c.Turn.Init(src, tc)
	if sock != nil && tc.Unsent > 0 {
		setUnsent(sock, tc.Unsent)
		c.Turn.bounded = sock
	}
}
