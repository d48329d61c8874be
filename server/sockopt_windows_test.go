//go:build windows

package server

import "golang.org/x/sys/windows"

// The socket buffer options smallBuffers sets.
const (
	soSndBuf = windows.SO_SNDBUF
	soRcvBuf = windows.SO_RCVBUF
)

// setBufSize sets a socket buffer option (soSndBuf, soRcvBuf) on fd.
func setBufSize(fd uintptr, opt, size int) error {
	return windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, opt, size)
}
