//go:build !linux

package netio

import "sync"

// CanPark is false here: an idle connection keeps its reader goroutine.
const CanPark = false

// Parker parks nothing here.
type Parker struct{ WG *sync.WaitGroup }

// Park refuses.
func (*Parker) Park(Parkee, int) bool { return false }

// Unpark does nothing.
func (*Parker) Unpark(int) {}

// Rearm refuses.
func (*Parker) Rearm(int) bool { return false }

// Stop does nothing.
func (*Parker) Stop() {}
