//go:build !unix

package main

import (
	"syscall"
	"testing"
)

// sendSignal skips the test: signals between processes need a Unix system.
func sendSignal(t *testing.T, _ int, sig syscall.Signal) {
	t.Helper()
	t.Skipf("this test sends %v to a process, which needs a Unix system", sig)
}

// processRuns is not reached: every test that calls it sends a signal first.
func processRuns(int) bool { return false }
