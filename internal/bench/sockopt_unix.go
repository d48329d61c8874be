//go:build unix

package bench

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// smallRcvBuf shrinks a socket's receive buffer before it connects.
func smallRcvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}
