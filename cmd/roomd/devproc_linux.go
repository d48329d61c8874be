package main

import "syscall"

// devProcAttr puts a dev-cluster node in a process group of its own, so
// that the terminal's Ctrl-C reaches dev-cluster only (which then stops the
// nodes one by one), and has the kernel stop it if dev-cluster dies.
func devProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
