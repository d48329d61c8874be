package netio

import (
	"runtime/debug"
	"sync"
	"time"
)

// When many connections have parked, the memory their goroutines' stacks
// and buffers held is free inside the runtime but still counted against the
// process until a collection and the background scavenger give it back, on
// an idle server minutes later. So once parking settles (no park for
// releaseQuiet, or releaseEvery since the last release) with at least
// releaseMin more connections parked than at the last release, Release runs
// one collection and returns free memory to the system
// (debug.FreeOSMemory). A busy server is not touched: parking is what
// triggers it.
const (
	releaseMin   = 1000
	releaseQuiet = 2 * time.Second
	releaseEvery = 30 * time.Second
)

// Release gives parked connections' memory back to the system.
type Release struct {
	// Parked returns how many connections are parked now. Set before use.
	Parked func() int64
	// Released, if set, is called after each release.
	Released func()

	mu     sync.Mutex
	timer  *time.Timer
	parked int64     // parked connections at the last release
	last   time.Time // the last release (or when the timer was first armed)
	closed bool

	// The policy's numbers (SetPolicy); zero: the constants.
	min          int64
	quiet, every time.Duration
}

// SetPolicy replaces the policy's numbers: at least min more parked than
// at the last release, after quiet without a park or every since the last
// release (tests shorten them).
func (r *Release) SetPolicy(min int64, quiet, every time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.min, r.quiet, r.every = min, quiet, every
}

func (r *Release) fill() {
	if r.min == 0 {
		r.min, r.quiet, r.every = releaseMin, releaseQuiet, releaseEvery
	}
}

// ParkedOne notes a connection parked: it (re)arms the release.
func (r *Release) ParkedOne() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fill()
	switch {
	case r.closed:
	case r.timer == nil:
		r.last = time.Now()
		r.timer = time.AfterFunc(r.quiet, r.release)
	case time.Since(r.last) < r.every:
		r.timer.Reset(r.quiet) // parking goes on: wait for it to settle
	}
}

func (r *Release) release() {
	r.mu.Lock()
	n := r.Parked()
	if r.closed || n-r.parked < r.min {
		r.parked = min(r.parked, n)
		r.mu.Unlock()
		return
	}
	r.parked, r.last = n, time.Now()
	r.mu.Unlock()
	debug.FreeOSMemory()
	if r.Released != nil {
		r.Released()
	}
}

// Stop disarms the release.
func (r *Release) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
}
