package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// sseObserver is one SSE stream: a read-only subscriber of one or more rooms.
//
// A request's path through the files: sse.go parses it, joins the rooms
// and waits for their answers (run); this file is the queue the rooms
// deliver to; the stream is then written by its own write turn
// (sse_raw.go) or by the handler's goroutine through net/http
// (sse_http.go), rendered by sse_render.go; sse.go leaves the rooms.
//
// Rooms call Deliver with their lock held; it only queues the event (under
// o.mu) and wakes the writer: it kicks a raw stream's write turn, or makes
// a non-blocking send on a one-slot channel to the handler's goroutine.
// Events are rendered by the writer, outside every lock; each event's SSE
// frame is encoded once for all observers (sseFrame, room.Event.Alt), and a
// stream adds to it only its multi-room id.
//
// Policy when the queue would pass SSEQueueMaxBytes: an ephemeral event is
// dropped; a durable one (message, state, presence) first evicts the queued
// ephemeral events, and if it still does not fit the observer is cut: what is
// queued is dropped, the stream ends with bye slow_consumer, and the client
// resumes with Last-Event-ID. The join answer is always admitted and not
// counted (the room's history and state limits bound it). An event costs the
// size of its encoded frame plus sseEventOverhead: the JSON written is of the
// same order, and the events themselves are shared by every subscriber.
//
// Lock order: a room's lock, then o.mu. The observer never calls into a room
// while holding o.mu.
type sseObserver struct {
	srv   *Server
	id    string // connection id of the observer in its rooms
	user  string
	eph   bool // ?ephemeral=1
	multi bool // GET /v1/events: ids carry every room's position
	hist  int  // ?h=
	rooms []*sseRoom
	// The net/http writer's (sse_http.go): a one-slot "something changed",
	// and the response. Both nil once the stream is raw.
	wake chan struct{}
	rc   *http.ResponseController
	// expTimer ends the stream when its token expires; set before the
	// stream starts, stopped by removeObserver.
	expTimer *time.Timer

	mu      sync.Mutex
	queue   []sseItem
	qbytes  int       // queued and in-flight cost
	joined  int       // rooms whose join answer arrived
	ended   bool      // Deliver queues nothing more
	bye     *byeFrame // set by a cut or shutdown: write it next and end
	writing bool      // a write is in flight, cut at writeDL
	writeDL time.Time
	hardDL  time.Time // shutdown's deadline; caps every later write
	dropped int       // ephemeral events dropped

	// Writer-owned.
	spare []sseItem

	raw *rawStream // set under mu once the stream writes its own response (sse_raw.go)
}

var _ room.Subscriber = (*sseObserver)(nil)

// sseRoom is one room of a stream.
type sseRoom struct {
	name  string
	since *protocol.Since // the client's resume point, nil for none

	// Set by Deliver under o.mu when the join answer arrives.
	epoch string
	start string // first seq replayed, or "snapshot"

	// Writer-owned: the position written last, for multi-room ids.
	posEpoch string
	posSeq   uint64
	hasPos   bool
}

type sseItem struct {
	ev   *room.Event
	cost int
}

// sseEventOverhead is the cost of an event's "event:" and "id:" lines.
const sseEventOverhead = 64

func sseCost(ev *room.Event) int {
	n := len(ev.Frame)
	if n == 0 {
		n = len(ev.Data) + len(ev.Key) + len(ev.Room)
	}
	return n + sseEventOverhead
}

func (o *sseObserver) room(name string) *sseRoom {
	for _, rm := range o.rooms {
		if rm.name == name {
			return rm
		}
	}
	return nil
}

// Deliver implements room.Subscriber. It runs with the room's lock held.
func (o *sseObserver) Deliver(ev *room.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	switch ev.Kind {
	case room.KindJoined:
		rm := o.room(ev.Room)
		if rm == nil || rm.epoch != "" {
			return
		}
		j := ev.Joined
		rm.epoch = j.Epoch
		if j.Reset {
			rm.start = "snapshot"
		} else {
			rm.start = strconv.FormatUint(rm.since.S+1, 10)
		}
		o.joined++
		o.pushLocked(ev, 0)
	case room.KindEph:
		if !o.eph {
			return
		}
		cost := sseCost(ev)
		if o.qbytes > 0 && o.qbytes+cost > o.srv.cfg.SSEQueueMaxBytes {
			o.dropped++
			o.srv.cfg.Metrics.EphemeralDropped()
			return
		}
		o.pushLocked(ev, cost)
	case room.KindMsg, room.KindState, room.KindPres:
		cost := sseCost(ev)
		if o.qbytes > 0 && o.qbytes+cost > o.srv.cfg.SSEQueueMaxBytes {
			o.evictEphemeralLocked()
			if o.qbytes > 0 && o.qbytes+cost > o.srv.cfg.SSEQueueMaxBytes {
				o.srv.slowCuts.Add(1)
				o.srv.cfg.Metrics.SlowConsumer("sse")
				o.cutLocked(byeFrame{protocol.CodeSlowConsumer, "outbound queue overflowed; resume with Last-Event-ID"}, time.Time{})
				return
			}
		}
		o.pushLocked(ev, cost)
	case room.KindLeft:
		// Written in order, after what is queued; then the stream ends.
		o.ended = true
		o.pushLocked(ev, 0)
	}
}

// pushLocked queues ev and wakes the writer. o.mu held.
func (o *sseObserver) pushLocked(ev *room.Event, cost int) {
	o.queue = append(o.queue, sseItem{ev: ev, cost: cost})
	o.qbytes += cost
	o.srv.cfg.Metrics.Delivered("sse")
	o.signal()
}

// signal wakes the writer without ever blocking. o.mu held.
func (o *sseObserver) signal() {
	if o.raw != nil {
		o.kickLocked()
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// evictEphemeralLocked drops every queued ephemeral event. o.mu held.
func (o *sseObserver) evictEphemeralLocked() {
	kept := o.queue[:0]
	for _, it := range o.queue {
		if it.ev.Kind == room.KindEph {
			o.qbytes -= it.cost
			o.dropped++
			o.srv.cfg.Metrics.EphemeralDropped()
			continue
		}
		kept = append(kept, it)
	}
	clear(o.queue[len(kept):])
	o.queue = kept
}

// cutLocked ends the stream: what is queued is dropped and b is written next.
// A non-zero deadline caps the writes still to come, the one in flight
// included. o.mu held.
func (o *sseObserver) cutLocked(b byeFrame, deadline time.Time) {
	if !deadline.IsZero() && (o.hardDL.IsZero() || deadline.Before(o.hardDL)) {
		o.hardDL = deadline
		if o.raw != nil {
			o.raw.sock.CapDeadlineLocked(deadline) // a write in flight too
		}
		if o.writing && deadline.Before(o.writeDL) {
			o.writeDL = deadline
			_ = o.rc.SetWriteDeadline(deadline)
		}
	}
	if o.ended && o.bye != nil {
		return
	}
	o.ended = true
	o.bye = &b
	for _, it := range o.queue {
		o.qbytes -= it.cost
	}
	clear(o.queue)
	o.queue = o.queue[:0]
	o.signal()
}

// close ends the stream with b (server shutdown), writing nothing past
// deadline (zero: no cap beyond WriteTimeout).
func (o *sseObserver) close(b byeFrame, deadline time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cutLocked(b, deadline)
}

// take returns everything queued (the batch is the writer's until it calls
// done) and the bye to write after it, if any.
func (o *sseObserver) take() ([]sseItem, *byeFrame) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.takeLocked()
}

// takeLocked is take with o.mu held.
func (o *sseObserver) takeLocked() ([]sseItem, *byeFrame) {
	if o.bye != nil {
		return nil, o.bye
	}
	batch := o.queue
	o.queue = o.spare[:0]
	o.spare = nil
	return batch, nil
}

// done gives a written batch back.
func (o *sseObserver) done(batch []sseItem) {
	n := 0
	for i := range batch {
		n += batch[i].cost
	}
	clear(batch)
	o.mu.Lock()
	o.giveBackLocked(batch, n)
	o.mu.Unlock()
}

// giveBackLocked takes a written batch's cost off the queue's and keeps its
// (cleared) array for the next. o.mu held.
func (o *sseObserver) giveBackLocked(batch []sseItem, cost int) {
	o.qbytes -= cost
	if batch != nil && cap(batch) <= 256 {
		o.spare = batch[:0]
	}
}
