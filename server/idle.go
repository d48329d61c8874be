package server

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
)

// An idle connection's cost is mostly the stack of its reader. Parked inside
// gorilla's read path it keeps 8 KiB; parked in waitReadable it uses a few
// hundred bytes, and the runtime shrinks the rest away at the next GC. So
// on plain TCP (not TLS, whose records hide the socket's readiness), a
// session waits for its next bytes there, takes pongs itself, and enters
// gorilla only when a message starts.

// ownReader hands gorilla a read buffer the session can see, so it knows
// when no bytes are buffered and waiting on the socket is right.
type ownReader struct {
	http.ResponseWriter
	size int
	br   *bufio.Reader
}

func (o *ownReader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := o.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil || rw.Reader.Buffered() > 0 {
		return c, rw, err // gorilla refuses early bytes anyway
	}
	o.br = bufio.NewReaderSize(c, o.size)
	return c, bufio.NewReadWriter(o.br, rw.Writer), nil
}

// rawConn returns the socket of a plain TCP connection, nil otherwise.
func rawConn(c net.Conn) syscall.RawConn {
	if !canIdleShallow {
		return nil
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// idleRead waits, shallowly, for the start of the next message. It returns
// an error only when waiting failed (deadline, closed socket).
func (ss *session) idleRead() error {
	if ss.raw == nil || ss.br == nil {
		return nil
	}
	for ss.br.Buffered() == 0 {
		if err := waitReadable(ss.raw); err != nil {
			return err
		}
		if !takePong(ss.raw) {
			return nil
		}
		ss.extendRead()
	}
	return nil
}
