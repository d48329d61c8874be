//go:build !linux

package server

import "syscall"

// canIdleShallow is false here: connections wait for their next message
// in gorilla's read path.
const canIdleShallow = false

func waitReadable(syscall.RawConn) error { return nil }

func takePong(syscall.RawConn) bool { return false }

func readable(syscall.RawConn) bool { return true }

func writev(uintptr, []byte, []byte) (int, bool) { return 0, true }
