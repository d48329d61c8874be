//go:build !unix

package netio

import "time"

// processCPU is unknown here.
func processCPU() (time.Duration, bool) { return 0, false }
