package hooks

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Event is one report to deliver: a committed message (published) or a
// room's transition (occupied, vacated). Exactly one field is set.
type Event struct {
	Published *PublishedEvent `json:"published,omitempty"`
	Lifecycle *RoomEvent      `json:"lifecycle,omitempty"`
}

// Hook is the event's hook.
func (e Event) Hook() Name {
	if e.Published != nil {
		return Published
	}
	return e.Lifecycle.Hook
}

// Room is the event's room.
func (e Event) Room() string {
	if e.Published != nil {
		return e.Published.Room
	}
	return e.Lifecycle.Room
}

// Epoch is the epoch of the event's room.
func (e Event) Epoch() string {
	if e.Published != nil {
		return e.Published.Epoch
	}
	return e.Lifecycle.Epoch
}

// Pos is the event's place in its room: a message's seq, a transition's N.
func (e Event) Pos() uint64 {
	if e.Published != nil {
		return e.Published.Seq
	}
	return e.Lifecycle.N
}

// Deliver queues an event for delivery after the room's earlier ones. It
// never blocks: past QueueMax queued events the event goes to the
// dead-letter store at once.
func (h *Hooks) Deliver(ev Event) {
	if h == nil {
		return
	}
	if ev.Published != nil {
		ev.Published.Hook = Published
	}
	h.del.add(ev, true)
}

// OnDelivered makes h call f after each event is acknowledged (or
// dead-lettered), in order per room: the room's owner records its delivery
// cursor with it. Set it before events are delivered.
func (h *Hooks) OnDelivered(f func(ev Event)) {
	h.delivered.Store(&f)
}

// delivery runs one goroutine per room with queued events, which delivers
// them one at a time, in order, each retried with backoff up to
// RetryAttempts before it is dead-lettered.
type delivery struct {
	h    *Hooks
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	rooms  map[string][]Event // queued, by room; present while its goroutine runs
	queued int
	closed bool
	dead   deadLetters
}

func newDelivery(h *Hooks) *delivery {
	return &delivery{h: h, stop: make(chan struct{}), rooms: map[string][]Event{},
		dead: deadLetters{max: h.cfg.DeadLetterMax, m: h.cfg.Metrics}}
}

// add queues ev; fresh events past QueueMax are dead-lettered instead.
func (d *delivery) add(ev Event, fresh bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if fresh && d.queued >= d.h.cfg.QueueMax {
		d.dead.add(ev, 0, "delivery queue full")
		return
	}
	q, running := d.rooms[ev.Room()]
	d.rooms[ev.Room()] = append(q, ev)
	d.queued++
	d.h.cfg.Metrics.HookQueued(d.queued)
	if !running {
		d.wg.Add(1)
		go d.run(ev.Room())
	}
}

// run delivers a room's events until its queue is empty.
func (d *delivery) run(room string) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.rooms[room]
		if len(q) == 0 || d.closed {
			delete(d.rooms, room)
			d.mu.Unlock()
			return
		}
		ev := q[0]
		d.mu.Unlock()
		attempts, err := d.deliver(ev)
		if err != nil && d.stopped() {
			return // not delivered: the next owner has it again
		}
		d.mu.Lock()
		d.rooms[room] = d.rooms[room][1:]
		d.queued--
		d.h.cfg.Metrics.HookQueued(d.queued)
		if err != nil {
			d.dead.add(ev, attempts, err.Error())
		}
		d.mu.Unlock()
		if err != nil {
			d.h.log.Warn("hook event dead-lettered", slog.String(logKeyHook, string(ev.Hook())),
				slog.String(logKeyRoom, room), slog.Any(logKeyErr, err))
		}
		if f := d.h.delivered.Load(); f != nil {
			(*f)(ev)
		}
	}
}

// deliver tries an event up to RetryAttempts times, with backoff. A call
// refused by an open breaker is no attempt: the event waits for the
// backend without spending its attempts.
func (d *delivery) deliver(ev Event) (attempts int, err error) {
	wait := d.h.cfg.RetryMin
	ns := d.h.namespace(ev.Room())
	for {
		err = d.h.call(context.Background(), ev.Hook(), d.h.breakerNS(ev.Room()), ns.Timeout, func(ctx context.Context) (bool, error) {
			return true, d.send(ctx, ev)
		})
		if !errors.Is(err, ErrBreakerOpen) {
			attempts++
		}
		if err == nil || attempts >= d.h.cfg.RetryAttempts {
			return attempts, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.stop:
			t.Stop()
			return attempts, err
		}
		wait = min(2*wait, d.h.cfg.RetryMax)
	}
}

func (d *delivery) send(ctx context.Context, ev Event) error {
	if ev.Published != nil {
		p := *ev.Published
		return d.h.be.Published(ctx, &p)
	}
	l := *ev.Lifecycle
	if l.Hook == Occupied {
		return d.h.be.Occupied(ctx, &l)
	}
	return d.h.be.Vacated(ctx, &l)
}

func (d *delivery) stopped() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

func (d *delivery) close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.stop)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
