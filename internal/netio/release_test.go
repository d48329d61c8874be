package netio

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
)

// A release that comes due while the process is busy waits for a quiet
// spell, however long, and then runs once.
func TestReleaseWaitsForAQuietProcess(t *testing.T) {
	const quiet = 20 * time.Millisecond
	var (
		parked   atomic.Int64
		released atomic.Int32
		spin     atomic.Bool // the CPU clock runs at a core while set
		cpuNS    atomic.Int64
		last     atomic.Int64
	)
	clock := func() (time.Duration, bool) {
		now := time.Now().UnixNano()
		if prev := last.Swap(now); prev != 0 && spin.Load() {
			cpuNS.Add(now - prev)
		}
		return time.Duration(cpuNS.Load()), true
	}
	r := &Release{Parked: parked.Load, Released: func() { released.Add(1) }, CPU: clock}
	r.SetPolicy(3, quiet, time.Minute, 0.5)
	defer r.Stop()

	spin.Store(true)
	clock()
	parked.Store(3)
	r.ParkedOne()
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := r.PutOff(); n < 3 {
			return fmt.Errorf("put off %d times", n)
		}
		return nil
	})
	if n := released.Load(); n != 0 {
		t.Fatalf("%d releases while busy", n)
	}
	spin.Store(false)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := released.Load(); n != 1 {
			return fmt.Errorf("%d releases", n)
		}
		return nil
	})
}

// processCPU counts this process's work.
func TestProcessCPU(t *testing.T) {
	before, ok := processCPU()
	if !ok {
		t.Skip("no process CPU time here")
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	after, _ := processCPU()
	if after-before < 10*time.Millisecond {
		t.Fatalf("50 ms of spinning counted %v", after-before)
	}
}
