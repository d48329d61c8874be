package server

import (
	"runtime"
	"sync"
)

// flushers write sessions' queued frames without blocking (session.flush),
// so that a fan-out costs one write per connection and a few goroutines in
// all, not a goroutine per connection: a room's publish queues the event to
// each subscriber and hands the subscribers to the flushers, which run in
// parallel, up to Config.Flushers (half the cores by default), only while
// there is something to flush.
type flushers struct {
	srv     *Server
	mu      sync.Mutex
	q       []flushable // waiting from q[head]
	head    int
	running int
	max     int // flushers at most (Config.Flushers), read once per burst (0: not yet)
}

// flushable is a WebSocket session or a raw SSE stream.
type flushable interface{ flush() }

// flushChunk is how many sessions a flusher takes at once.
const flushChunk = 32

// add queues a session (or stream) to flush, and starts a flusher if fewer
// than the bound run. The caller holds its lock and its writing turn.
func (f *flushers) add(s flushable) {
	f.mu.Lock()
	f.q = append(f.q, s)
	if f.max == 0 {
		// Not per delivery: runtime.GOMAXPROCS takes the scheduler's lock.
		f.max = f.srv.cfg.Flushers
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
		f.srv.wg.Add(1)
		go f.run()
	}
}

// run flushes sessions until none is waiting.
func (f *flushers) run() {
	defer f.srv.wg.Done()
	var batch []flushable
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
		n := min(len(f.q)-f.head, flushChunk)
		batch = append(batch[:0], f.q[f.head:f.head+n]...)
		f.head += n
		f.mu.Unlock()
		for _, s := range batch {
			s.flush()
		}
		clear(batch)
	}
}
