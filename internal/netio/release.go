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
// (debug.FreeOSMemory). That stalls the process: the collection, then the
// return of every free page with the heap's lock held, which every
// goroutine that needs a new span waits for (600 ms for 10,000 parked
// connections on a 2-core machine). So it waits for a quiet process too:
// a release that comes due while the process used more than releaseBusy of
// a core since the last park (or the last try) is put off by releaseQuiet,
// as often as it takes. Subscribers that only read park too, so parking
// settles while their rooms are busy; meanwhile the runtime's background
// scavenger gives the memory back at its own pace, without a stall.
const (
	releaseMin   = 1000
	releaseQuiet = 2 * time.Second
	releaseEvery = 30 * time.Second
	releaseBusy  = 0.1
)

// Release gives parked connections' memory back to the system.
type Release struct {
	// Parked returns how many connections are parked now. Set before use.
	Parked func() int64
	// Released, if set, is called after each release.
	Released func()
	// CPU returns the process's CPU time so far (false: unknown, and the
	// release does not wait for a quiet process). Nil means the
	// process's own (processCPU). Set before use.
	CPU func() (time.Duration, bool)

	mu     sync.Mutex
	timer  *time.Timer
	parked int64     // parked connections at the last release
	last   time.Time // the last release (or when the timer was first armed)
	closed bool
	// The process's CPU time and the wall time at the last park or try:
	// the release measures how busy the process was since.
	cpuAt  time.Duration
	wallAt time.Time
	// PutOff counts the releases put off because the process was busy.
	putOff int64

	// The policy's numbers (SetPolicy); zero: the constants.
	min          int64
	quiet, every time.Duration
	busy         float64
}

// SetPolicy replaces the policy's numbers: at least min more parked than
// at the last release, after quiet without a park or every since the last
// release, and only while the process uses at most busy cores (tests
// change them).
func (r *Release) SetPolicy(min int64, quiet, every time.Duration, busy float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.min, r.quiet, r.every, r.busy = min, quiet, every, busy
}

func (r *Release) fill() {
	if r.min == 0 {
		r.min, r.quiet, r.every, r.busy = releaseMin, releaseQuiet, releaseEvery, releaseBusy
	}
}

// PutOff is how many releases were put off because the process was busy.
func (r *Release) PutOff() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.putOff
}

// markLocked notes the CPU and wall times the next try measures from.
func (r *Release) markLocked() {
	r.wallAt = time.Now()
	r.cpuAt, _ = r.cpu()
}

// busyLocked tells whether the process used more than r.busy cores since
// the last mark.
func (r *Release) busyLocked() bool {
	now, ok := r.cpu()
	wall := time.Since(r.wallAt)
	if !ok || wall <= 0 {
		return false
	}
	return float64(now-r.cpuAt) > r.busy*float64(wall)
}

func (r *Release) cpu() (time.Duration, bool) {
	if r.CPU != nil {
		return r.CPU()
	}
	return processCPU()
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
		r.markLocked()
		r.timer = time.AfterFunc(r.quiet, r.release)
	case time.Since(r.last) < r.every:
		r.markLocked()
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
	if r.busyLocked() {
		// Busy: try again once more time has passed. Parks meanwhile
		// move the try, as before the first.
		r.putOff++
		r.markLocked()
		r.timer.Reset(r.quiet)
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
