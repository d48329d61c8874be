//go:build !linux

package netio

import "syscall"

// CanDirect is false here: every write goes through a writer goroutine.
const CanDirect = false

func writev(uintptr, []byte, []byte) (int, bool) { return 0, true }

func sendRoom(uintptr) (empty, room bool) { return false, false }

func setUnsent(syscall.RawConn, int) {}
