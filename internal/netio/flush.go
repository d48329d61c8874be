package netio

import (
	"runtime"
	"sync"
)

// Flushers make turns' non-blocking writes, so that a fan-out costs one
// write per connection and a few goroutines in all, not a goroutine per
// connection: a room's publish queues the event to each subscriber and
// hands their turns to the flushers, which run in parallel, up to Max (half
// the cores when zero), only while there is something to flush. A turn
// whose write may block leaves them for a writer goroutine of its own.
type Flushers struct {
	// Max bounds the flushers running at once. Zero means half of
	// GOMAXPROCS (at least one). Set before use.
	Max int
	// WG counts the flushers' goroutines (the owner waits for it on
	// shutdown). Set before use.
	WG *sync.WaitGroup

	mu      sync.Mutex
	q       []*Turn // waiting from q[head]
	head    int
	running int
	max     int // the bound for this burst (0: not read yet)

	// budget is how many turns a flusher takes at once (tests shorten it).
	budget int
	grabs  int    // grabs taken, for tests
	taken  uint64 // turns taken, for tests (Taken)
}

// Taken counts the turns the flushers took so far.
func (f *Flushers) Taken() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taken
}

// flushChunk is how many turns a flusher takes at once: its budget before
// it goes back for more, so that one burst is shared among the flushers.
const flushChunk = 32

// add queues a turn to flush, and starts a flusher if fewer than the bound
// run. The caller holds the turn (and its source's lock).
func (f *Flushers) add(t *Turn) {
	f.mu.Lock()
	f.q = append(f.q, t)
	if f.max == 0 {
		// Not per delivery: runtime.GOMAXPROCS takes the scheduler's lock.
		f.max = f.Max
		if f.max <= 0 {
			f.max = max(1, runtime.GOMAXPROCS(0)/2)
		}
	}
	start := f.running < f.max
	if start {
		f.running++
	}
	f.mu.Unlock()
	if start {
		f.WG.Add(1)
		go f.run()
	}
}

// run flushes turns until none is waiting.
func (f *Flushers) run() {
	defer f.WG.Done()
	var batch []*Turn
	budget := f.budget
	if budget <= 0 {
		budget = flushChunk
	}
	for {
		f.mu.Lock()
		if f.head == len(f.q) {
			f.running--
			if f.running == 0 {
				f.max = 0 // the next burst reads the bound again
			}
			clear(f.q)
			f.q, f.head = f.q[:0], 0
			if cap(f.q) > 4096 {
				f.q = nil // a burst's array does not stay
			}
			f.mu.Unlock()
			return
		}
		n := min(len(f.q)-f.head, budget)
		batch = append(batch[:0], f.q[f.head:f.head+n]...)
		f.head += n
		f.grabs++
		f.taken += uint64(n)
		f.mu.Unlock()
		for _, t := range batch {
			t.run(false)
		}
		clear(batch)
	}
}
