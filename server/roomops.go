package server

import (
	"context"
	"sync"
	"time"
)

// roomOps runs a session's room operations off its reader, so that an
// operation that waits (a room whose owner is moving or unreachable may take
// up to the cluster's retry timeout) blocks neither the reader (pongs, other
// frames) nor the operations of the session's other rooms.
//
// The operations of one room run one after the other, in the order the
// reader submitted them, in a goroutine that lives while that room has work
// queued; those of different rooms run in parallel. At most
// Config.MaxOpsInFlight operations wait or run per session. At the bound,
// submit waits for a slot while operations complete (fast rooms: the
// reader is held back, and so the client, as when ops ran in the reader),
// but refuses at once when none completed for opsStall (a slow room filled
// the slots); the reader then answers err 7 overloaded. So a reader never
// waits more than opsStall for its ops.
//
// Lock order: ops.mu is a leaf; no room or session lock is taken under it.
type roomOps struct {
	wg sync.WaitGroup // one per room worker

	mu       sync.Mutex
	ctx      context.Context // canceled when the session ends; made at the first submit
	cancel   context.CancelFunc
	stopped  bool
	byRoom   map[string][]func(context.Context) // queued ops of rooms with a worker
	inFlight int
	lastDone time.Time     // when an op last completed, or work began
	slot     chan struct{} // one slot: "an op completed"; made at the first wait
}

// opsStall is how long operations at the bound may go without one
// completing before submit refuses instead of waiting.
const opsStall = 500 * time.Millisecond

// submit queues op for room, behind that room's earlier operations. It
// reports false when max operations already wait or run. beforeWait, when
// set, is called once before submit first waits for a slot (o.mu not
// held).
func (o *roomOps) submit(room string, limit int, op func(context.Context), beforeWait func()) bool {
	o.mu.Lock()
	if o.inFlight >= limit && !o.awaitSlotLocked(limit, beforeWait) {
		o.mu.Unlock()
		return false
	}
	if o.ctx == nil {
		o.ctx, o.cancel = context.WithCancel(context.Background())
		if o.stopped {
			o.cancel()
		}
	}
	if o.inFlight == 0 {
		o.lastDone = time.Now() // stalls count from when work began
	}
	o.inFlight++
	if q, ok := o.byRoom[room]; ok {
		o.byRoom[room] = append(q, op)
		o.mu.Unlock()
		return true
	}
	if o.byRoom == nil {
		o.byRoom = make(map[string][]func(context.Context))
	}
	o.byRoom[room] = nil // a worker runs for room
	o.wg.Add(1)
	o.mu.Unlock()
	go o.work(room, op)
	return true
}

// awaitSlotLocked waits until fewer than limit ops are in flight, while
// ops complete; it reports false when none completed for opsStall. It
// calls beforeWait (when set) once, before it first waits. o.mu held on
// entry and on return.
func (o *roomOps) awaitSlotLocked(limit int, beforeWait func()) bool {
	if o.slot == nil {
		o.slot = make(chan struct{}, 1)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for o.inFlight >= limit {
		wait := opsStall - time.Since(o.lastDone)
		if wait <= 0 {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		o.mu.Unlock()
		if beforeWait != nil {
			beforeWait()
			beforeWait = nil
		}
		select {
		case <-o.slot:
		case <-timer.C:
		}
		o.mu.Lock()
	}
	return true
}

// work runs op, then the room's next operations until none is queued.
func (o *roomOps) work(room string, op func(context.Context)) {
	defer o.wg.Done()
	o.mu.Lock()
	ctx := o.ctx
	o.mu.Unlock()
	for {
		op(ctx)
		o.mu.Lock()
		o.inFlight--
		o.lastDone = time.Now()
		if o.slot != nil {
			select {
			case o.slot <- struct{}{}:
			default:
			}
		}
		q := o.byRoom[room]
		if len(q) == 0 {
			delete(o.byRoom, room)
			if len(o.byRoom) == 0 {
				o.byRoom = nil // an idle session keeps no map
			}
			o.mu.Unlock()
			return
		}
		op = q[0]
		q[0] = nil
		o.byRoom[room] = q[1:]
		o.mu.Unlock()
	}
}

// full reports whether limit operations wait or run.
func (o *roomOps) full(limit int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inFlight >= limit
}

// stop cancels the operations still waiting and waits for every worker.
// Ops submitted later (none should be) get a canceled context.
func (o *roomOps) stop() {
	o.mu.Lock()
	o.stopped = true
	if o.cancel != nil {
		o.cancel()
	}
	o.mu.Unlock()
	o.wg.Wait()
}
