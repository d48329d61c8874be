//go:build linux

package server

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// canIdleShallow reports that this platform can wait for a connection's
// next bytes outside gorilla's read path (see idleRead).
const canIdleShallow = true

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

// waitReadable blocks, in a shallow frame, until the socket holds bytes
// (or fails, or the read deadline passes). Level-triggered: bytes already
// waiting end it at once.
func waitReadable(rc syscall.RawConn) error {
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		n, ok := peek(fd, b[:])
		return n > 0 || !ok
	})
}

// takePong consumes the next frame from the socket when it is a complete
// masked pong (what clients answer pings with) and reports whether it did.
// Anything else is left for the WebSocket reader.
func takePong(rc syscall.RawConn) bool {
	var buf [2 + 4 + 125]byte
	took := false
	_ = rc.Read(func(fd uintptr) bool {
		n, _ := peek(fd, buf[:])
		if n < 6 || buf[0] != 0x8A || buf[1]&0x80 == 0 {
			return true // not a pong, or not yet complete: leave it
		}
		size := 6 + int(buf[1]&0x7F)
		if buf[1]&0x7F > 125 || n < size {
			return true
		}
		r, err := unix.Read(int(fd), buf[:size])
		took = err == nil && r == size
		return true
	})
	return took
}

// readable reports, without waiting, that the socket holds bytes or the
// peer is gone.
func readable(rc syscall.RawConn) bool {
	var b [1]byte
	yes := false
	_ = rc.Read(func(fd uintptr) bool {
		n, ok := peek(fd, b[:])
		yes = n > 0 || !ok
		return true
	})
	return yes
}
