//go:build linux

package server

import (
	"syscall"
	"unsafe"
)

// writev writes a WebSocket frame header and its payload to a non-blocking
// socket in one system call. It returns the bytes written (0 when the socket
// is full) and whether the connection still works.
func writev(fd uintptr, hdr, b []byte) (int, bool) {
	iov := [2]syscall.Iovec{
		{Base: &hdr[0], Len: uint64(len(hdr))},
		{Base: &b[0], Len: uint64(len(b))},
	}
	for {
		r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), 2)
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
