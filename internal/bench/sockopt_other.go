//go:build !unix

package bench

import "syscall"

func smallRcvBuf(_, _ string, _ syscall.RawConn) error { return nil }
