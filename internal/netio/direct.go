package netio

import (
	"errors"
	"net"
	"syscall"
)

// ErrWriteFailed is what a direct write returns when the socket failed.
var ErrWriteFailed = errors.New("netio: write failed")

// RawConn returns the socket of a plain TCP connection for direct writes
// and shallow reads, nil otherwise (TLS, other platforms).
func RawConn(c net.Conn) syscall.RawConn {
	if !CanDirect {
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

// directWrite makes one non-blocking writev on a socket for a turn's
// holder: fn is bound once, so a write allocates nothing. The write goes
// through syscall.RawConn, which holds a reference on the descriptor: once
// the connection is closed it fails, and never reaches a descriptor the
// kernel handed to another socket.
type directWrite struct {
	fn     func(fd uintptr) bool
	hdr, b []byte
	n      int
	ok     bool
}

// do writes h and b (either may be empty) in one try: a full socket is the
// writer goroutine's business. It returns the bytes written (0 when the
// socket is full).
func (d *directWrite) do(rc syscall.RawConn, h, b []byte) (int, error) {
	if d.fn == nil {
		d.fn = d.write
	}
	d.hdr, d.b = h, b
	err := rc.Write(d.fn)
	n, ok := d.n, d.ok
	d.hdr, d.b, d.n, d.ok = nil, nil, 0, false
	if err == nil && !ok {
		err = ErrWriteFailed
	}
	return n, err
}

func (d *directWrite) write(fd uintptr) bool {
	d.n, d.ok = writev(fd, d.hdr, d.b)
	return true
}
