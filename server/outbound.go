package server

import (
	"bufio"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// The outbound policy of a session. Frames are queued under ss.mu by
// Deliver (called with a room's lock held, so it never blocks) and by the
// session's own reader, and written through the session's write turn
// (internal/netio; the pieces are built in ws_write.go): a connection that
// keeps up costs one non-blocking writev per WebSocket message, made by the
// server's flushers, and no goroutine, timer or copy of its own.
//
// Policy when the queue would pass QueueMaxBytes: an ephemeral frame is
// dropped; a durable frame first evicts the queued ephemeral frames, and if
// it still does not fit, the connection is cut with slow_consumer. A frame
// larger than the whole bound is accepted only into an empty queue.

// outItem is one queued frame.
type outItem struct {
	b   []byte
	eph bool
	// deflate: b goes compressed, ev's shared compression (ws_deflate.go).
	deflate bool
	// ev is the room event b is the frame of; nil for the session's own
	// frames. A durable event's Created is the start of the
	// publish-to-write latency (at).
	ev *room.Event
	// coalescing key of an ephemeral frame: its room and sender connection.
	room, from string
}

// at is when the durable event it carries was built (unix ns), for the
// publish-to-write latency; zero for other frames.
func (it *outItem) at() int64 {
	if it.ev == nil {
		return 0
	}
	return it.ev.Created
}

// class of a frame for the overflow policy.
const (
	durable = false
	dropOK  = true
)

// maxBatchBytes bounds the frames written as one WebSocket message.
const maxBatchBytes = 64 << 10

// enqueue queues a frame of the session's own. Lock order: a room's lock,
// then ss.mu.
func (ss *session) enqueue(b []byte, eph bool, room, from string) {
	ss.enqueueItem(outItem{b: b, eph: eph, room: room, from: from})
}

// enqueueItem queues a frame. Lock order: a room's lock, then ss.mu.
func (ss *session) enqueueItem(n outItem) {
	b, eph, room, from := n.b, n.eph, n.room, n.from
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closing {
		return
	}
	if eph && from != "" {
		// Coalesce: a newer ephemeral frame from the same sender in the same
		// room replaces the one still waiting.
		for i := len(ss.queue) - 1; i >= 0; i-- {
			it := &ss.queue[i]
			if it.eph && it.room == room && it.from == from {
				ss.addQueued(len(b) - len(it.b))
				it.b, it.ev, it.deflate = b, n.ev, n.deflate
				return
			}
		}
	}
	if ss.qbytes+len(b) > ss.srv.cfg.QueueMaxBytes && ss.qbytes > 0 {
		if eph {
			ss.ephDropped++
			ss.srv.cfg.Metrics.EphemeralDropped()
			return
		}
		ss.evictEphemeral()
		if ss.qbytes+len(b) > ss.srv.cfg.QueueMaxBytes {
			ss.cutSlowLocked("outbound queue overflowed")
			return
		}
	}
	switch {
	case ss.queue == nil:
		ss.queue = getQueue()
	case len(ss.queue) == cap(ss.queue):
		ss.queue = growQueue(ss.queue)
	}
	ss.queue = append(ss.queue, n)
	ss.addQueued(len(b))
	if ss.held && n.ev == nil {
		return // the reader writes it (writeOwn)
	}
	ss.sock.KickLocked()
}

// cutSlowLocked closes the session with bye slow_consumer, counted. ss.mu
// held.
func (ss *session) cutSlowLocked(why string) {
	ss.srv.slowCuts.Add(1)
	ss.srv.cfg.Metrics.SlowConsumer("ws")
	ss.closeLocked(byeFrame{protocol.CodeSlowConsumer, why})
}

// The reader answers what it read itself. While it handles a message, the
// session's own frames (ok, err, and whatever else is not a room event)
// are queued without handing the turn to the flushers; once the reader
// has handled every whole message its read buffer holds, and before
// anything that may wait, it writes them in its own goroutine (one write
// for the answers to a burst of messages). Under a flood of publishes the
// node refuses most of them: those answers then cost the one write of the
// reader that read them, on any core, and never queue in the flushers
// ahead of other connections' fan-out, nor that fan-out ahead of them.
// Room events are never held: a delivery does not wait on another
// connection's reader.

// holdOwn starts holding the session's own frames for the reader, once the
// session said hello (a hello may wait on the connect hook).
func (ss *session) holdOwn() {
	if ss.id == "" {
		return
	}
	ss.mu.Lock()
	ss.held = true
	ss.mu.Unlock()
}

// writeOwn stops holding the session's own frames and writes what is
// queued, in the calling goroutine, unless the turn is held (its holder
// writes them) or what is due goes to the writer goroutine. Reader only.
func (ss *session) writeOwn() {
	ss.mu.Lock()
	if !ss.held {
		ss.mu.Unlock()
		return
	}
	ss.held = false
	if len(ss.queue) == 0 || !ss.sock.HoldLocked() {
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	ss.sock.WriteHeld()
}

// buffered is what br holds, without taking it.
func buffered(br *bufio.Reader) []byte {
	if br == nil {
		return nil
	}
	b, _ := br.Peek(br.Buffered())
	return b
}

// addQueued adjusts the queued byte counts. ss.mu held.
func (ss *session) addQueued(n int) {
	ss.qbytes += n
	ss.srv.queued.Add(int64(n))
}

// evictEphemeral drops every queued ephemeral frame. ss.mu held.
func (ss *session) evictEphemeral() {
	kept := ss.queue[:0]
	for _, it := range ss.queue {
		if it.eph {
			ss.addQueued(-len(it.b))
			ss.ephDropped++
			ss.srv.cfg.Metrics.EphemeralDropped()
			continue
		}
		kept = append(kept, it)
	}
	for i := len(kept); i < len(ss.queue); i++ {
		ss.queue[i] = outItem{}
	}
	ss.queue = kept
}

// Queue arrays come from pools and go back once written: a session that
// keeps up queues one frame at a time, and would otherwise make (and drop)
// an array per delivery; an idle session holds none. A busy node's sessions
// queue tens of frames between two writes (a flusher's pass over a room of
// thousands), so a queue grows through three pooled sizes, 8, 64 and 512
// frames, before it grows as a slice does, unpooled (a client that far
// behind is near its cut): without them, the arrays dropped as queues grew
// were most of what a busy node allocated, and its collector ran ten times
// a second.
var (
	queuePool8   = sync.Pool{New: func() any { return new([8]outItem) }}
	queuePool64  = sync.Pool{New: func() any { return new([64]outItem) }}
	queuePool512 = sync.Pool{New: func() any { return new([512]outItem) }}
)

func getQueue() []outItem { return queuePool8.Get().(*[8]outItem)[:0] }

// growQueue returns a full queue q moved to the next pooled size, q going
// back to its pool; past the largest, q itself (append grows it).
func growQueue(q []outItem) []outItem {
	var g []outItem
	switch cap(q) {
	case 8:
		g = queuePool64.Get().(*[64]outItem)[:0]
	case 64:
		g = queuePool512.Get().(*[512]outItem)[:0]
	default:
		return q
	}
	g = append(g, q...)
	putQueue(q)
	return g
}

// putQueue returns a queue array from the pools, cleared, to its pool (one
// that grew past them is left to the collector).
func putQueue(q []outItem) {
	switch q = q[:cap(q)]; cap(q) {
	case 8:
		clear(q)
		queuePool8.Put((*[8]outItem)(q))
	case 64:
		clear(q)
		queuePool64.Put((*[64]outItem)(q))
	case 512:
		clear(q)
		queuePool512.Put((*[512]outItem)(q))
	}
}

// oldestAt is the queue time of the first durable event in batch (0: none).
func oldestAt(batch []outItem) int64 {
	for i := range batch {
		if at := batch[i].at(); at != 0 {
			return at
		}
	}
	return 0
}

// batchEnd returns the end of the WebSocket message that starts at
// batch[start] (at most maxBatchBytes of frames, or one larger frame) and
// its size.
func batchEnd(batch []outItem, start int) (end, size int) {
	end, size = start+1, len(batch[start].b)
	for end < len(batch) && size+len(batch[end].b) <= maxBatchBytes {
		size += len(batch[end].b)
		end++
	}
	return end, size
}

// dropQueueLocked discards what is queued. ss.mu held.
func (ss *session) dropQueueLocked() {
	for i := range ss.queue {
		ss.addQueued(-len(ss.queue[i].b))
	}
	putQueue(ss.queue)
	ss.queue = nil
}

// onPingTimer runs every PingInterval: it asks the writer for a ping control
// frame, and queues a {t: ping} frame when nothing was sent for an interval.
// For a parked session it also stands in for the read deadline no goroutine
// waits on: it fires when that passes too, and wakes the session, whose
// reader then finds the deadline gone (bye no_pong).
func (ss *session) onPingTimer() {
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return
	}
	now := time.Now()
	if ss.parked && now.UnixNano() >= ss.readDL.Load() {
		ss.wakeUpLocked()
		ss.mu.Unlock()
		return
	}
	if now.Before(ss.nextPing) {
		ss.rearmPingTimerLocked() // fired for the deadline, which moved
		ss.mu.Unlock()
		return
	}
	ss.pingDue = true
	idle := now.Sub(time.Unix(0, ss.lastWrite.Load())) >= ss.srv.cfg.PingInterval-ss.srv.cfg.PingInterval/10
	ss.mu.Unlock()
	if idle {
		ss.enqueue(pingFrame, durable, "", "")
	}
	ss.mu.Lock()
	if !ss.closing {
		ss.sock.KickLocked()
		ss.nextPing = now.Add(ss.srv.cfg.PingInterval)
		ss.rearmPingTimerLocked()
	}
	ss.mu.Unlock()
}

// rearmPingTimerLocked sets the ping timer for the next ping, or for the
// read deadline of a parked session if that comes first. ss.mu held.
func (ss *session) rearmPingTimerLocked() {
	if ss.pingTimer == nil {
		return
	}
	next := time.Until(ss.nextPing)
	if ss.parked {
		if dl := time.Until(time.Unix(0, ss.readDL.Load())); dl < next {
			next = dl
		}
	}
	ss.pingTimer.Reset(max(next, time.Millisecond))
}

var pingFrame = protocol.MustEncode(protocol.Ping{T: protocol.TypePing})
