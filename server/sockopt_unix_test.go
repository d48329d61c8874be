//go:build unix

package server

import "golang.org/x/sys/unix"

// The socket buffer options smallBuffers sets.
const (
	soSndBuf = unix.SO_SNDBUF
	soRcvBuf = unix.SO_RCVBUF
)

// setBufSize sets a socket buffer option (soSndBuf, soRcvBuf) on fd.
func setBufSize(fd uintptr, opt, size int) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
}
