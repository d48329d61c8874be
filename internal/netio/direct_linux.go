//go:build linux

package netio

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
//
// The call is raw: it does not tell the scheduler it entered a system
// call, as a write that cannot block need not. A flusher makes thousands
// of these a second; through the scheduler's system call path, each one
// that outlasted a tick of the runtime's monitor gave its P away to the
// goroutines waiting, and the flusher, back from the kernel, queued behind
// every one of them (on a busy node, tens of milliseconds of fan-out
// latency per message).
func writev(fd uintptr, hdr, b []byte) (int, bool) {
	n := len(hdr) + len(b)
	if n == 0 {
		return 0, true
	}
	// One buffer for write(2) (p), or both for writev(2).
	var buf [smallWrite]byte
	var p []byte
	switch {
	case n <= smallWrite:
		copy(buf[copy(buf[:], hdr):], b)
		p = buf[:n]
	case len(hdr) == 0:
		p = b
	case len(b) == 0:
		p = hdr
	}
	var iov [2]unix.Iovec
	for {
		var w uintptr
		var errno unix.Errno
		if p != nil {
			w, _, errno = unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		} else {
			iov[0].Base, iov[1].Base = &hdr[0], &b[0]
			iov[0].SetLen(len(hdr))
			iov[1].SetLen(len(b))
			w, _, errno = unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), 2)
		}
		switch errno {
		case 0:
			return int(w), true
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

// setUnsent bounds what the socket holds not yet sent (TCP_NOTSENT_LOWAT):
// past n bytes it takes no more, so what a client is slow to take waits in
// its owner's queue, where the queue's bound and the write timeout see it,
// rather than in megabytes of send buffer (the kernel sizes it by the
// segment size: on loopback, 4 MiB). What is sent and not yet acknowledged
// is not bounded, so a distant client's throughput is not either.
func setUnsent(rc syscall.RawConn, n int) {
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	})
}
