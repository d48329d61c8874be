//go:build linux

package netio

import (
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/roomd/roomd/internal/wsframe"
)

// peek copies up to len(b) bytes of what the socket holds without taking
// them; n is 0 when nothing is there yet (or the peer closed: then ok is
// false too, and the normal read path finds out why). unix.Recvfrom
// allocates the sender's address it returns (unused here on a connected
// socket): one small allocation per wait, against a message read's many.
func peek(fd uintptr, b []byte) (n int, ok bool) {
	n, _, err := unix.Recvfrom(int(fd), b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err == unix.EAGAIN || err == unix.EINTR {
		return 0, true
	}
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// WaitFrame blocks, in a shallow frame, until the socket holds bytes (or
// fails, or the read deadline passes). When they begin with a complete
// masked pong (what clients answer pings with), it takes that pong and
// reports it; anything else is left for the WebSocket reader. One peek per
// wake-up does both: every message a connection sends costs a wake, and a
// system call is most of a wake's cost. Level-triggered: bytes already
// waiting end it at once.
func WaitFrame(rc syscall.RawConn) (pong bool, err error) {
	var buf pongBuf
	err = rc.Read(func(fd uintptr) bool {
		n, ok := peek(fd, buf[:])
		if n == 0 {
			return !ok
		}
		pong = takePeekedPong(fd, &buf, n)
		return true
	})
	return pong, err
}

// TakePong consumes the next frame from the socket when it is a complete
// masked pong (what clients answer pings with) and reports whether it did.
// Anything else is left for the WebSocket reader.
func TakePong(rc syscall.RawConn) bool {
	var buf pongBuf
	took := false
	_ = rc.Read(func(fd uintptr) bool {
		n, _ := peek(fd, buf[:])
		took = takePeekedPong(fd, &buf, n)
		return true
	})
	return took
}

// pongBuf holds as much of a socket as a masked pong can take.
type pongBuf [6 + wsframe.MaxControlPayload]byte

// takePeekedPong reads off the socket the complete masked pong that the n
// bytes peeked into b begin with, and reports whether it did. Anything
// else, a pong not yet complete included, is left where it is.
func takePeekedPong(fd uintptr, b *pongBuf, n int) bool {
	size := wsframe.MaskedPongLen(b[:n])
	if size == 0 {
		return false
	}
	r, err := unix.Read(int(fd), b[:size])
	return err == nil && r == size
}

// Readable reports, without waiting, that the socket holds bytes or the
// peer is gone.
func Readable(rc syscall.RawConn) bool {
	var b [1]byte
	yes := false
	_ = rc.Read(func(fd uintptr) bool {
		n, ok := peek(fd, b[:])
		yes = n > 0 || !ok
		return true
	})
	return yes
}
