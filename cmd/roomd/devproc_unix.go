//go:build unix && !linux

package main

import "syscall"

// devProcAttr puts a dev-cluster node in a process group of its own, so
// that the terminal's Ctrl-C reaches dev-cluster only (which then stops the
// nodes one by one).
func devProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
