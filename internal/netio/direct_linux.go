//go:build linux

package netio

import "golang.org/x/sys/unix"

// CanDirect reports that this platform makes non-blocking direct writes
// and shallow reads; elsewhere every write goes through a writer goroutine
// and every read through the connection.
const CanDirect = true

// smallWrite is the most a write copies into one buffer for write(2)
// rather than hand to writev as two: copying a few hundred bytes costs less
// than what writev adds over write(2) (docs/BENCHMARKS.md, "What we tried").
const smallWrite = 512

// writev writes a header and a body (either may be empty) to a
// non-blocking socket in one system call. It returns the bytes written (0
// when the socket is full) and whether the connection still works. It
// allocates nothing.
func writev(fd uintptr, hdr, b []byte) (int, bool) {
	n := len(hdr) + len(b)
	for {
		var w int
		var err error
		switch {
		case n == 0:
			return 0, true
		case n <= smallWrite:
			var buf [smallWrite]byte
			copy(buf[copy(buf[:], hdr):], b)
			w, err = unix.Write(int(fd), buf[:n])
		case len(hdr) == 0:
			w, err = unix.Write(int(fd), b)
		case len(b) == 0:
			w, err = unix.Write(int(fd), hdr)
		default:
			w, err = unix.Writev(int(fd), [][]byte{hdr, b})
		}
		switch err {
		case nil:
			return w, true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, true
		}
		return 0, false
	}
}

// sendRoom tells whether a non-blocking socket's send buffer has room, so
// that a small write takes at once, whole: empty when nothing is waiting
// there (SIOCOUTQ: every byte sent was acknowledged, the cheaper
// question); else room when poll(2) says POLLOUT (at least a third of it is
// free). It allocates nothing.
func sendRoom(fd uintptr) (empty, room bool) {
	if n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil && n == 0 {
		return true, true
	}
	pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(pfd[:], 0)
		if err == unix.EINTR {
			continue
		}
		return false, err == nil && n == 1 && pfd[0].Revents&unix.POLLOUT != 0 && pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) == 0
	}
}
