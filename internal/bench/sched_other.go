//go:build !linux

package bench

// SchedBatch does nothing outside Linux.
func SchedBatch() error { return nil }
