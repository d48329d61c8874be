//go:build linux

package server

import (
	"syscall"
	"unsafe"
)

// writev writes a header and a body (either may be empty) to a
// non-blocking socket in one system call. It returns the bytes written (0 when the socket
// is full) and whether the connection still works.
func writev(fd uintptr, hdr, b []byte) (int, bool) {
	var iov [2]syscall.Iovec
	n := 0
	for _, p := range [2][]byte{hdr, b} {
		if len(p) > 0 {
			iov[n] = syscall.Iovec{Base: &p[0], Len: uint64(len(p))}
			n++
		}
	}
	if n == 0 {
		return 0, true
	}
	for {
		r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		switch errno {
		case 0:
			return int(r), true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, true
		}
		return 0, false
	}
}
