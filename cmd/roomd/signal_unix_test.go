//go:build unix

package main

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// sendSignal sends sig to process pid.
func sendSignal(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := unix.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
}

// processRuns reports whether process pid still exists.
func processRuns(pid int) bool { return unix.Kill(pid, 0) == nil }
