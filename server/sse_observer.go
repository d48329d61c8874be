package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// sseObserver is one SSE stream: a read-only subscriber of one or more rooms.
//
// Rooms call Deliver with their lock held; it only queues the event (under
// o.mu) and wakes the writer with a non-blocking send on a one-slot channel.
// The writer is the HTTP handler's own goroutine, so a stream holds no other
// goroutine; events are turned into JSON there, outside every lock, and each
// event's JSON is computed once for all observers (room.Event.Alt).
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
	wake  chan struct{} // one slot: "something changed"
	rc    *http.ResponseController
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
			o.raw.turn.CapDeadlineLocked(deadline) // a write in flight too
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
	o.qbytes -= n
	if cap(batch) <= 256 {
		o.spare = batch[:0]
	}
	o.mu.Unlock()
}

// beginWrite sets the write deadline of the next write. It reports false
// when the stream must not write anymore (shutdown's deadline passed).
func (o *sseObserver) beginWrite() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	dl, capped := o.writeDeadlineLocked(now)
	if !dl.After(now) {
		return false
	}
	o.writing = true
	// The deadline moves when a quarter of WriteTimeout has passed, not
	// before every write (a write is cut after 3/4 to all of WriteTimeout):
	// setting it is a timer operation, a tenth of a small write's cost.
	if capped || o.writeDL.Sub(now) < o.srv.cfg.WriteTimeout*3/4 {
		o.writeDL = dl
		_ = o.rc.SetWriteDeadline(dl)
	}
	return true
}

// writeDeadlineLocked is the deadline of a write starting at now:
// WriteTimeout, capped by shutdown's deadline (capped). o.mu held.
func (o *sseObserver) writeDeadlineLocked(now time.Time) (dl time.Time, capped bool) {
	dl = now.Add(o.srv.cfg.WriteTimeout)
	if !o.hardDL.IsZero() && o.hardDL.Before(dl) {
		return o.hardDL, true
	}
	return dl, false
}

func (o *sseObserver) endWrite() {
	o.mu.Lock()
	o.writing = false
	o.mu.Unlock()
}

// stream writes events until the stream ends: a bye, a failed write, or the
// client gone (ctx done). The response's headers are already decided.
func (o *sseObserver) stream(ctx context.Context, w http.ResponseWriter) {
	sw := &sseWriter{w: w}
	interval := o.srv.cfg.SSEPingInterval
	if !o.write(sw, func() { sw.retry(o.srv.cfg.SSERetry) }) {
		return
	}
	ping := time.NewTimer(interval)
	defer ping.Stop()
	for {
		batch, bye := o.take()
		if len(batch) > 0 {
			ok := o.write(sw, func() { bye = o.writeBatch(sw, batch) })
			o.done(batch)
			if !ok {
				return
			}
		}
		if bye != nil {
			o.srv.byeCode(bye.code)
			o.write(sw, func() { sw.bye(*bye) })
			return
		}
		if len(batch) > 0 {
			ping.Reset(interval)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-ping.C:
			if !o.write(sw, sw.ping) {
				return
			}
			ping.Reset(interval)
		}
	}
}

// write runs fill, which writes through sw, and flushes, under a write
// deadline. It reports whether everything was written.
func (o *sseObserver) write(sw *sseWriter, fill func()) bool {
	if !o.beginWrite() {
		return false
	}
	defer o.endWrite()
	sw.n, sw.events = 0, 0
	fill()
	if sw.err == nil {
		sw.err = o.rc.Flush()
	}
	if sw.n > 0 {
		o.srv.cfg.Metrics.MessageOut(sw.events, sw.n)
	}
	return sw.err == nil
}

// writeBatch writes queued events. A KindLeft ends the batch: its code and
// message are returned as the stream's bye.
func (o *sseObserver) writeBatch(sw *sseWriter, batch []sseItem) *byeFrame {
	for _, it := range batch {
		ev := it.ev
		switch ev.Kind {
		case room.KindJoined:
			o.writeJoined(sw, ev)
		case room.KindMsg:
			sw.event("message", o.appendID(sw.id[:0], ev.Room, ev.Epoch, ev.Seq), eventJSON(ev))
		case room.KindState:
			sw.event("state", o.appendID(sw.id[:0], ev.Room, ev.Epoch, ev.Seq), eventJSON(ev))
		case room.KindPres:
			sw.event("presence", nil, eventJSON(ev))
		case room.KindEph:
			sw.event("ephemeral", nil, eventJSON(ev))
		case room.KindLeft:
			return &byeFrame{ev.Code, ev.Msg}
		}
		if sw.err != nil {
			return nil
		}
	}
	return nil
}

// writeJoined writes a join answer: the replayed log, or a snapshot.
func (o *sseObserver) writeJoined(sw *sseWriter, ev *room.Event) {
	j := ev.Joined
	if !j.Reset {
		for _, e := range j.Log {
			name := "message"
			if e.Kind == room.KindState {
				name = "state"
			}
			sw.event(name, o.appendID(sw.id[:0], ev.Room, e.Epoch, e.Seq), eventJSON(e))
		}
		return
	}
	data := snapshotJSON(ev.Room, j.Epoch, j.Seq, j.Presence, j.State, j.Log)
	sw.event("snapshot", o.appendID(sw.id[:0], ev.Room, j.Epoch, j.Seq), data)
}

// appendID appends the id of a durable event (or snapshot) of a room at
// epoch:seq. A one-room stream's id is "{epoch}:{seq}"; a multi-room
// stream's is every room's position, "{room}={epoch}:{seq}" joined by ",",
// in the order the rooms were asked for (rooms with no position yet left
// out).
func (o *sseObserver) appendID(dst []byte, name, epoch string, seq uint64) []byte {
	if !o.multi {
		return appendPos(dst, epoch, seq)
	}
	if rm := o.room(name); rm != nil {
		rm.posEpoch, rm.posSeq, rm.hasPos = epoch, seq, true
	}
	first := true
	for _, rm := range o.rooms {
		if !rm.hasPos {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, rm.name...)
		dst = append(dst, '=')
		dst = appendPos(dst, rm.posEpoch, rm.posSeq)
	}
	return dst
}

func appendPos(dst []byte, epoch string, seq uint64) []byte {
	dst = append(dst, epoch...)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, seq, 10)
}

// sseWriter writes the text/event-stream format, keeping the first error.
type sseWriter struct {
	w      io.Writer
	err    error
	n      int // bytes written since the last flush
	events int
	line   []byte
	id     []byte
}

func (sw *sseWriter) put(b []byte) {
	if sw.err != nil || len(b) == 0 {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += n
	sw.err = err
}

// event writes one event; id nil means none. data is one line.
func (sw *sseWriter) event(name string, id, data []byte) {
	if id != nil {
		sw.id = id[:0]
	}
	l := append(sw.line[:0], "event: "...)
	l = append(l, name...)
	l = append(l, '\n')
	if id != nil {
		l = append(l, "id: "...)
		l = append(l, id...)
		l = append(l, '\n')
	}
	l = append(l, "data: "...)
	sw.line = l
	sw.put(l)
	sw.put(data)
	sw.put(eventEnd)
	sw.events++
}

var (
	eventEnd  = []byte("\n\n")
	pingBytes = []byte(": ping\n\n")
)

func (sw *sseWriter) ping() { sw.put(pingBytes) }

func (sw *sseWriter) retry(d time.Duration) {
	l := append(sw.line[:0], "retry: "...)
	l = strconv.AppendInt(l, d.Milliseconds(), 10)
	l = append(l, "\n\n"...)
	sw.line = l
	sw.put(l)
}

// bye writes the stream's last event: {"code","name","msg"}.
func (sw *sseWriter) bye(b byeFrame) {
	data, _ := json.Marshal(apiErrorBody{Code: b.code, Name: b.code.String(), Msg: b.msg})
	sw.event("bye", nil, data)
}
