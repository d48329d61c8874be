package server

import (
	"encoding/binary"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/roomd/roomd/protocol"
)

// The outbound side of a session. Frames are queued under s.mu by Deliver
// (called with a room's lock held, so it never blocks) and by the session's
// own reader. Whoever queues to an idle session hands it to the server's
// flushers (flush.go): a few goroutines, half the cores by default, only while
// there is work, that write each session's queue with one non-blocking
// writev per WebSocket message, the frames' bytes as they are. A connection
// that keeps up therefore costs one system call per write and no goroutine,
// timer or copy of its own. A session whose socket is full, or that owes a
// ping, a pong or a bye, gets a writer goroutine of its own instead, which
// writes with a deadline and exits when its queue is empty; so an idle
// connection holds no goroutine and no buffer on this side.
//
// Policy when the queue would pass QueueMaxBytes: an ephemeral frame is
// dropped; a durable frame first evicts the queued ephemeral frames, and if
// it still does not fit, the connection is cut with slow_consumer. A frame
// larger than the whole bound is accepted only into an empty queue.

// outItem is one queued frame.
type outItem struct {
	b   []byte
	eph bool
	// at is when a durable event was built (unix ns), for the
	// publish-to-write latency; zero for other frames.
	at int64
	// coalescing key of an ephemeral frame: its room and sender connection.
	room, from string
	// raw: b is the rest of a WebSocket frame a flusher's write began; it
	// goes to the socket as it is, before anything else (see writeNow).
	raw bool
}

// class of a frame for the overflow policy.
const (
	durable = false
	dropOK  = true
)

// maxBatchBytes bounds the frames written as one WebSocket message.
const maxBatchBytes = 64 << 10

// enqueue queues a frame. Lock order: a room's lock, then s.mu.
func (s *session) enqueue(b []byte, eph bool, room, from string) {
	s.enqueueAt(b, eph, room, from, 0)
}

// enqueueAt is enqueue with the queue time of a durable event.
func (s *session) enqueueAt(b []byte, eph bool, room, from string, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	if eph && from != "" {
		// Coalesce: a newer ephemeral frame from the same sender in the same
		// room replaces the one still waiting.
		for i := len(s.queue) - 1; i >= 0; i-- {
			it := &s.queue[i]
			if it.eph && it.room == room && it.from == from {
				s.addQueued(len(b) - len(it.b))
				it.b = b
				return
			}
		}
	}
	if s.qbytes+len(b) > s.srv.cfg.QueueMaxBytes && s.qbytes > 0 {
		if eph {
			s.ephDropped++
			s.srv.cfg.Metrics.EphemeralDropped()
			return
		}
		s.evictEphemeral()
		if s.qbytes+len(b) > s.srv.cfg.QueueMaxBytes {
			s.srv.slowCuts.Add(1)
			s.srv.cfg.Metrics.SlowConsumer("ws")
			s.closeLocked(byeFrame{protocol.CodeSlowConsumer, "outbound queue overflowed"}, true)
			return
		}
	}
	if s.queue == nil {
		s.queue = getQueue()
	}
	s.queue = append(s.queue, outItem{b: b, eph: eph, room: room, from: from, at: at})
	s.addQueued(len(b))
	s.kickWriterLocked()
}

// appendFrameHeader appends the header of an unmasked final binary
// WebSocket frame of n payload bytes (RFC 6455 §5.2).
func appendFrameHeader(h []byte, n int) []byte {
	switch {
	case n < 126:
		return append(h, 0x82, byte(n))
	case n <= 0xFFFF:
		return append(h, 0x82, 126, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(h, 0x82, 127), uint64(n))
}

// addQueued adjusts the queued byte counts. s.mu held.
func (s *session) addQueued(n int) {
	s.qbytes += n
	s.srv.queued.Add(int64(n))
}

// evictEphemeral drops every queued ephemeral frame. s.mu held.
func (s *session) evictEphemeral() {
	kept := s.queue[:0]
	for _, it := range s.queue {
		if it.eph {
			s.addQueued(-len(it.b))
			s.ephDropped++
			s.srv.cfg.Metrics.EphemeralDropped()
			continue
		}
		kept = append(kept, it)
	}
	for i := len(kept); i < len(s.queue); i++ {
		s.queue[i] = outItem{}
	}
	s.queue = kept
}

// kickWriterLocked gets what is queued written, unless that is under way.
// On plain TCP the session goes to the server's flushers, which write
// without blocking; it gets a writer goroutine of its own only when it needs
// one: its socket is full (or holds the rest of a frame), it owes a ping or
// a pong, or it is closing. s.mu held.
func (s *session) kickWriterLocked() {
	if s.writing {
		return
	}
	s.writing = true
	if s.raw == nil || s.needsWriterLocked() {
		s.startWriterLocked()
		return
	}
	s.srv.flush.add(s)
}

// needsWriterLocked reports that the next write may block, so a flusher
// must not do it. s.mu held.
func (s *session) needsWriterLocked() bool {
	return s.closing || s.pingDue || s.pongDue || s.partial
}

// startWriterLocked hands the writing to a goroutine of the session's own.
// s.writing is set. s.mu held.
func (s *session) startWriterLocked() {
	s.srv.wg.Add(1)
	go s.writeLoop()
}

// stopWritingLocked ends a writing turn and returns the channel to close
// once the turn's last write (a bye) is done, if someone waits for it.
// s.mu held.
func (s *session) stopWritingLocked() chan struct{} {
	s.writing = false
	done := s.writerDone
	s.writerDone = nil
	return done
}

// writerDoneLocked returns a channel closed when the current writing turn
// ends (nil when none runs). s.mu held.
func (s *session) writerDoneLocked() chan struct{} {
	if !s.writing {
		return nil
	}
	if s.writerDone == nil {
		s.writerDone = make(chan struct{})
	}
	return s.writerDone
}

// flush writes what is queued without blocking; it runs on a flusher. When
// the socket takes it all, the session leaves with nothing queued and no
// goroutine of its own; otherwise the rest goes to a writer goroutine.
func (s *session) flush() {
	s.mu.Lock()
	for {
		if s.needsWriterLocked() {
			s.startWriterLocked()
			s.mu.Unlock()
			return
		}
		if len(s.queue) == 0 {
			s.queue = nil
			done := s.stopWritingLocked()
			s.mu.Unlock()
			if done != nil {
				close(done)
			}
			return
		}
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		rest, ok := s.writeNow(batch)
		putQueue(batch) // writeNow cleared it
		s.mu.Lock()
		if !ok {
			s.dropQueueLocked(false)
			done := s.stopWritingLocked()
			s.mu.Unlock()
			s.abort()
			if done != nil {
				close(done)
			}
			return
		}
		if len(rest) > 0 {
			s.queue = append(rest, s.queue...)
			s.startWriterLocked()
			s.mu.Unlock()
			return
		}
	}
}

// Queue arrays come from a pool and go back once written: a session that
// keeps up queues one frame at a time, and would otherwise make (and drop)
// an array per delivery; an idle session holds none.
const pooledQueueLen = 8

var queuePool = sync.Pool{New: func() any { return new([pooledQueueLen]outItem) }}

func getQueue() []outItem { return queuePool.Get().(*[pooledQueueLen]outItem)[:0] }

// putQueue returns a queue array from getQueue, cleared, to the pool (one
// that grew past it is left to the collector).
func putQueue(q []outItem) {
	if cap(q) != pooledQueueLen {
		return
	}
	q = q[:pooledQueueLen]
	clear(q)
	queuePool.Put((*[pooledQueueLen]outItem)(q))
}

// writeNow writes frames as writeBatch does, with one non-blocking writev
// per WebSocket message (header and frame bytes as they are, nothing
// copied for a single frame). It returns what the socket did not take: the
// rest of a frame it took in part comes first, as a raw item. ok is false
// when the connection failed.
func (s *session) writeNow(batch []outItem) (rest []outItem, ok bool) {
	before := 0
	for i := range batch {
		before += len(batch[i].b)
	}
	defer func() {
		after := 0
		for i := range rest {
			after += len(rest[i].b)
		}
		s.mu.Lock()
		s.addQueued(after - before)
		if len(rest) > 0 && rest[0].raw {
			s.partial = true
		}
		s.mu.Unlock()
		for i := range batch {
			batch[i] = outItem{}
		}
	}()
	oldest := oldestAt(batch)
	var hdr [10]byte
	for start := 0; start < len(batch); {
		end, size := batchEnd(batch, start)
		body, bp := messageBody(batch[start:end])
		h := appendFrameHeader(hdr[:0], len(body))
		n, err := s.dw.do(s.raw, h, body)
		if n > 0 && n < len(h)+len(body) {
			tail := make([]byte, 0, len(h)+len(body)-n)
			if n < len(h) {
				tail = append(append(tail, h[n:]...), body...)
			} else {
				tail = append(tail, body[n-len(h):]...)
			}
			rest = append(rest, outItem{b: tail, raw: true, at: oldest})
			rest = append(rest, batch[end:]...)
		}
		putBatchBuf(bp)
		switch {
		case err != nil:
			return nil, false
		case n == 0:
			return append(rest, batch[start:]...), true
		case len(rest) > 0:
			return rest, true
		}
		s.srv.cfg.Metrics.MessageOut(end-start, size)
		start = end
	}
	s.wrote(oldest)
	return nil, true
}

// directWrite makes one non-blocking writev on a socket, for the holder of
// a writing turn (a session's or a raw SSE stream's): fn is bound once, so a
// write allocates nothing.
type directWrite struct {
	fn     func(fd uintptr) bool
	hdr, b []byte
	n      int
	ok     bool
}

// do writes h and b (either may be empty) in one try: a full socket is the
// writer goroutine's business. It returns the bytes written (0 when the
// socket is full).
func (d *directWrite) do(rc syscall.RawConn, h, b []byte) (int, error) {
	if d.fn == nil {
		d.fn = d.write
	}
	d.hdr, d.b = h, b
	err := rc.Write(d.fn)
	n, ok := d.n, d.ok
	d.hdr, d.b, d.n, d.ok = nil, nil, 0, false
	if err == nil && !ok {
		err = errWriteFailed
	}
	return n, err
}

func (d *directWrite) write(fd uintptr) bool {
	d.n, d.ok = writev(fd, d.hdr, d.b)
	return true
}

var errWriteFailed = errors.New("write failed")

// oldestAt is the queue time of the first durable event in batch (0: none).
func oldestAt(batch []outItem) int64 {
	for i := range batch {
		if batch[i].at != 0 {
			return batch[i].at
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

// writeLoop writes queued frames until the queue is empty, then exits: an
// idle connection holds no writer. (A writer that lingered for more saved
// nothing: docs/BENCHMARKS.md, "What we tried".)
func (s *session) writeLoop() {
	defer s.srv.wg.Done()
	var batch []outItem
	for {
		s.mu.Lock()
		ping, pong, pongDue := s.pingDue, s.pong, s.pongDue
		s.pingDue, s.pong, s.pongDue = false, nil, false
		if len(s.queue) == 0 && !ping && !pongDue {
			s.queue = nil
			s.clearWriteDeadline()
			done := s.stopWritingLocked()
			closing, bye := s.closing, s.bye
			s.mu.Unlock()
			if closing && bye != nil {
				s.finishClose(*bye)
			}
			if done != nil {
				close(done)
			}
			return
		}
		// Take everything queued; the queue's array goes with it, so an
		// idle session keeps no slice.
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()

		ok, frames := true, batch
		if len(frames) > 0 && frames[0].raw {
			ok = s.writeRaw(frames[0]) // the rest of a frame first
			frames = frames[1:]
		}
		if ok && pongDue {
			ok = s.conn.WriteControl(websocket.PongMessage, pong, time.Now().Add(s.srv.cfg.WriteTimeout)) == nil
		}
		if ok && ping {
			ok = s.writePing()
		}
		if ok && len(frames) > 0 {
			ok = s.writeBatch(frames)
		}
		n := 0
		for i := range batch {
			n += len(batch[i].b)
			batch[i] = outItem{}
		}
		s.mu.Lock()
		s.addQueued(-n)
		s.mu.Unlock()
		if !ok {
			s.abort()
			s.mu.Lock()
			done := s.stopWritingLocked()
			s.dropQueueLocked(false)
			s.mu.Unlock()
			if done != nil {
				close(done)
			}
			return
		}
		if cap(batch) > 256 {
			batch = nil
		}
	}
}

// writeRaw finishes the frame a flusher's write began.
func (s *session) writeRaw(it outItem) bool {
	s.refreshWriteDeadline()
	if _, err := s.conn.NetConn().Write(it.b); err != nil {
		return false
	}
	s.mu.Lock()
	s.partial = false
	s.mu.Unlock()
	s.srv.cfg.Metrics.MessageOut(1, len(it.b))
	s.wrote(it.at)
	return true
}

// wrote records that writes went out: the time, for the idle ping, and the
// publish-to-write latency of the oldest durable event among them (oldest
// 0: none).
func (s *session) wrote(oldest int64) {
	now := time.Now().UnixNano()
	s.lastWrite.Store(now)
	if oldest != 0 {
		s.srv.cfg.Metrics.PublishToWrite(time.Duration(now - oldest))
		s.srv.adm.ObserveWrite(time.Duration(now - oldest))
	}
}

func (s *session) writePing() bool {
	return s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.srv.cfg.WriteTimeout)) == nil
}

// writeBatch writes frames as WebSocket messages of at most maxBatchBytes
// (a larger frame goes alone), through gorilla's allocation-free
// WriteMessage: one frame as it is, several copied into a pooled buffer.
func (s *session) writeBatch(batch []outItem) bool {
	s.refreshWriteDeadline()
	oldest := oldestAt(batch)
	for len(batch) > 0 {
		i, size := batchEnd(batch, 0)
		body, bp := messageBody(batch[:i])
		err := s.conn.WriteMessage(websocket.BinaryMessage, body)
		putBatchBuf(bp)
		if err != nil {
			return false
		}
		s.srv.cfg.Metrics.MessageOut(i, size)
		batch = batch[i:]
	}
	s.wrote(oldest)
	return true
}

var batchBufPool = sync.Pool{New: func() any { b := make([]byte, 0, maxBatchBytes); return &b }}

// messageBody returns the bytes of one WebSocket message carrying frames:
// one frame as it is, several copied into a pooled buffer (bp, to give back
// with putBatchBuf once written; nil for one frame).
func messageBody(frames []outItem) (body []byte, bp *[]byte) {
	if len(frames) == 1 {
		return frames[0].b, nil
	}
	bp = batchBufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for i := range frames {
		buf = append(buf, frames[i].b...)
	}
	*bp = buf
	return buf, bp
}

func putBatchBuf(bp *[]byte) {
	if bp != nil {
		*bp = (*bp)[:0]
		batchBufPool.Put(bp)
	}
}

// refreshWriteDeadline moves the write deadline to WriteTimeout from now
// when a quarter of it has passed, rather than before every write: a write
// is cut after between 3/4 and all of WriteTimeout. Writer goroutine only.
func (s *session) refreshWriteDeadline() {
	now := time.Now()
	if now.Sub(s.deadlineSet) < s.srv.cfg.WriteTimeout/4 {
		return
	}
	s.deadlineSet = now
	_ = s.conn.SetWriteDeadline(now.Add(s.srv.cfg.WriteTimeout))
}

// clearWriteDeadline lifts the writer's deadline (its own, or the one
// gorilla's WriteControl set for a ping or pong) before its turn ends: the
// flushers' non-blocking writes must not find it passed (a passed deadline
// fails every write on the socket). Writer goroutine only.
func (s *session) clearWriteDeadline() {
	s.deadlineSet = time.Time{}
	_ = s.conn.NetConn().SetWriteDeadline(time.Time{})
}

// dropQueueLocked discards what is queued. With keepRaw, the rest of a frame
// a flusher's write began stays, so that what is written next (a bye) starts
// on a frame boundary. s.mu held.
func (s *session) dropQueueLocked(keepRaw bool) {
	from := 0
	if keepRaw && len(s.queue) > 0 && s.queue[0].raw {
		from = 1
	}
	for i := from; i < len(s.queue); i++ {
		s.addQueued(-len(s.queue[i].b))
		s.queue[i] = outItem{}
	}
	if from == 0 {
		s.queue = nil
	} else {
		s.queue = s.queue[:1]
	}
}

// onPingTimer runs every PingInterval: it asks the writer for a ping control
// frame, and queues a {t: ping} frame when nothing was sent for an interval.
// For a parked session it also stands in for the read deadline no goroutine
// waits on: it fires when that passes too, and wakes the session, whose
// reader then finds the deadline gone (bye no_pong).
func (s *session) onPingTimer() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	if s.parked && now.UnixNano() >= s.readDL.Load() {
		s.wakeUpLocked()
		s.mu.Unlock()
		return
	}
	if now.Before(s.nextPing) {
		s.rearmPingTimerLocked() // fired for the deadline, which moved
		s.mu.Unlock()
		return
	}
	s.pingDue = true
	idle := now.Sub(time.Unix(0, s.lastWrite.Load())) >= s.srv.cfg.PingInterval-s.srv.cfg.PingInterval/10
	s.mu.Unlock()
	if idle {
		s.enqueue(pingFrame, durable, "", "")
	}
	s.mu.Lock()
	if !s.closing {
		s.kickWriterLocked()
		s.nextPing = now.Add(s.srv.cfg.PingInterval)
		s.rearmPingTimerLocked()
	}
	s.mu.Unlock()
}

// rearmPingTimerLocked sets the ping timer for the next ping, or for the
// read deadline of a parked session if that comes first. s.mu held.
func (s *session) rearmPingTimerLocked() {
	if s.pingTimer == nil {
		return
	}
	next := time.Until(s.nextPing)
	if s.parked {
		if dl := time.Until(time.Unix(0, s.readDL.Load())); dl < next {
			next = dl
		}
	}
	s.pingTimer.Reset(max(next, time.Millisecond))
}

var pingFrame = protocol.MustEncode(protocol.Ping{T: protocol.TypePing})
