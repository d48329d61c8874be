//go:build !linux

package netio

import "syscall"

// WaitFrame returns at once here (RawConn is nil on these platforms).
func WaitFrame(syscall.RawConn) (pong bool, err error) { return false, nil }

// TakePong takes nothing here.
func TakePong(syscall.RawConn) bool { return false }

// Readable reports true here: read through the connection.
func Readable(syscall.RawConn) bool { return true }
