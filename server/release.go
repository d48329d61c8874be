package server

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
// releaseMin more sessions parked than at the last release, the server runs
// one collection and returns free memory to the system
// (debug.FreeOSMemory). A busy server is not touched: parking is what
// triggers it.
const (
	releaseMin   = 1000
	releaseQuiet = 2 * time.Second
	releaseEvery = 30 * time.Second
)

type memRelease struct {
	mu     sync.Mutex
	timer  *time.Timer
	parked int64     // parked sessions at the last release
	last   time.Time // the last release (or when the timer was first armed)
	closed bool

	// The policy's numbers (tests shorten them); zero: the constants.
	min          int64
	quiet, every time.Duration
}

func (r *memRelease) fill() {
	if r.min == 0 {
		r.min, r.quiet, r.every = releaseMin, releaseQuiet, releaseEvery
	}
}

// parkedOne notes a session parked: it (re)arms the release.
func (s *Server) parkedOne() {
	r := &s.release
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fill()
	switch {
	case r.closed:
	case r.timer == nil:
		r.last = time.Now()
		r.timer = time.AfterFunc(r.quiet, s.releaseMemory)
	case time.Since(r.last) < r.every:
		r.timer.Reset(r.quiet) // parking goes on: wait for it to settle
	}
}

func (s *Server) releaseMemory() {
	r := &s.release
	r.mu.Lock()
	n := s.parkedN.Load()
	if r.closed || n-r.parked < r.min {
		r.parked = min(r.parked, n)
		r.mu.Unlock()
		return
	}
	r.parked, r.last = n, time.Now()
	r.mu.Unlock()
	debug.FreeOSMemory()
	s.releases.Add(1)
}

// stopRelease disarms the release (Shutdown).
func (s *Server) stopRelease() {
	r := &s.release
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
}
