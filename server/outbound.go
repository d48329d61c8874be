package server

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/roomd/roomd/protocol"
)

// The outbound side of a session. Frames are queued under s.mu by Deliver
// (called with a room's lock held, so it never blocks) and by the session's
// own reader. A writer goroutine runs only while there is something to write:
// it takes everything queued, writes it as one WebSocket message, and exits
// when the queue is empty, so an idle connection holds no goroutine and no
// buffer on this side.
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
	s.queue = append(s.queue, outItem{b: b, eph: eph, room: room, from: from, at: at})
	s.addQueued(len(b))
	s.kickWriterLocked()
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

// kickWriterLocked starts the writer if it is not running. s.mu held.
func (s *session) kickWriterLocked() {
	if s.writing {
		return
	}
	s.writing = true
	s.writerDone = make(chan struct{})
	s.srv.wg.Add(1)
	go s.writeLoop(s.writerDone)
}

// writeLoop writes queued frames until the queue is empty, then exits: an
// idle connection holds no writer. (A writer that lingered for more was
// measured: it saved nothing, the write syscall dominates.)
func (s *session) writeLoop(done chan struct{}) {
	defer s.srv.wg.Done()
	defer close(done)
	var batch []outItem
	for {
		s.mu.Lock()
		ping := s.pingDue
		s.pingDue = false
		if len(s.queue) == 0 && !ping {
			s.writing = false
			s.queue = nil
			closing, bye := s.closing, s.bye
			s.mu.Unlock()
			if closing && bye != nil {
				s.finishClose(*bye)
			}
			return
		}
		// Take everything queued; the queue's array goes with it, so an
		// idle session keeps no slice.
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()

		ok := true
		if ping {
			ok = s.writePing()
		}
		if ok && len(batch) > 0 {
			ok = s.writeBatch(batch)
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
			s.writing = false
			s.dropQueueLocked()
			s.mu.Unlock()
			return
		}
		if cap(batch) > 256 {
			batch = nil
		}
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
	var oldest int64
	for i := range batch {
		if batch[i].at != 0 {
			oldest = batch[i].at
			break
		}
	}
	for len(batch) > 0 {
		i, size := 1, len(batch[0].b)
		for i < len(batch) && size+len(batch[i].b) <= maxBatchBytes {
			size += len(batch[i].b)
			i++
		}
		var err error
		if i == 1 {
			err = s.conn.WriteMessage(websocket.BinaryMessage, batch[0].b)
		} else {
			bp := batchBufPool.Get().(*[]byte)
			buf := (*bp)[:0]
			for j := 0; j < i; j++ {
				buf = append(buf, batch[j].b...)
			}
			err = s.conn.WriteMessage(websocket.BinaryMessage, buf)
			*bp = buf[:0]
			batchBufPool.Put(bp)
		}
		if err != nil {
			return false
		}
		s.srv.cfg.Metrics.MessageOut(i, size)
		batch = batch[i:]
	}
	now := time.Now().UnixNano()
	s.lastWrite.Store(now)
	if oldest != 0 {
		s.srv.cfg.Metrics.PublishToWrite(time.Duration(now - oldest))
	}
	return true
}

var batchBufPool = sync.Pool{New: func() any { b := make([]byte, 0, maxBatchBytes); return &b }}

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

// dropQueueLocked discards everything queued. s.mu held.
func (s *session) dropQueueLocked() {
	for i := range s.queue {
		s.addQueued(-len(s.queue[i].b))
		s.queue[i] = outItem{}
	}
	s.queue = nil
}

// onPingTimer runs every PingInterval: it asks the writer for a ping control
// frame, and queues a {t: ping} frame when nothing was sent for an interval.
func (s *session) onPingTimer() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.pingDue = true
	idle := time.Since(time.Unix(0, s.lastWrite.Load())) >= s.srv.cfg.PingInterval-s.srv.cfg.PingInterval/10
	s.mu.Unlock()
	if idle {
		s.enqueue(pingFrame, durable, "", "")
	}
	s.mu.Lock()
	if !s.closing {
		s.kickWriterLocked()
		s.pingTimer.Reset(s.srv.cfg.PingInterval)
	}
	s.mu.Unlock()
}

var pingFrame = protocol.MustEncode(protocol.Ping{T: protocol.TypePing})
