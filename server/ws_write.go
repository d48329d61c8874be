package server

import (
	"time"

	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
)

// A session is the netio.Source of its write turn: TakeLocked decides what
// goes on the socket next, Render builds its WebSocket frame (wsframe), and
// the turn writes it, on a flusher without blocking or on the turn's writer
// goroutine with a deadline. The order: once closing, the bye and the close
// frame (or the reply to the client's close), and nothing else; then a pong
// owed, a ping owed, and the queued frames, as WebSocket messages of at most
// maxBatchBytes (a larger frame goes alone). Pings, pongs and the close go
// to the writer goroutine, as blocking writes.

// wsOut is a session's side of its write turn, the netio.Source: what
// TakeLocked took for Render. Its fields are turn-owned; the session's
// queue and state it reads under ss.mu.
type wsOut struct {
	ss       *session
	out      []outItem
	outAt    int // out[:outAt] was taken
	msgFrom  int // the message taken last is out[msgFrom:outAt]
	next     outNext
	pongOut  []byte
	byeTaken bool
}

var _ netio.Source = (*wsOut)(nil)

// Lock and Unlock are ss.mu.
func (w *wsOut) Lock()   { w.ss.mu.Lock() }
func (w *wsOut) Unlock() { w.ss.mu.Unlock() }

// outNext is the kind of the piece TakeLocked took.
type outNext uint8

const (
	nextMsg outNext = iota
	nextPing
	nextPong
	nextBye
	nextCloseReply
)

// TakeLocked implements netio.Source. ss.mu held.
func (w *wsOut) TakeLocked(mayBlock bool) netio.Due {
	ss := w.ss
	if ss.closing {
		w.dropTakenLocked()
		ss.dropQueueLocked()
		switch {
		case ss.bye != nil && !w.byeTaken:
			w.next = nextBye
		case ss.closeReply != 0:
			w.next = nextCloseReply
		default:
			return netio.Idle
		}
		if !mayBlock {
			return netio.Blocking
		}
		w.byeTaken = true
		return netio.Ready
	}
	if ss.pongDue || ss.pingDue {
		if !mayBlock {
			return netio.Blocking
		}
		if ss.pongDue {
			w.next, w.pongOut = nextPong, ss.pong
			ss.pongDue, ss.pong = false, nil
		} else {
			w.next = nextPing
			ss.pingDue = false
		}
		return netio.Ready
	}
	if w.outAt == len(w.out) {
		putQueue(w.out)
		w.out, w.outAt = nil, 0
		if len(ss.queue) == 0 {
			return netio.Idle
		}
		// Take everything queued; the queue's array goes with it, so an
		// idle session keeps no slice.
		w.out, ss.queue = ss.queue, nil
	}
	w.next, w.msgFrom = nextMsg, w.outAt
	w.outAt, _ = batchEnd(w.out, w.outAt)
	return netio.Ready
}

// Render implements netio.Source: it builds the piece TakeLocked took.
// Turn holder only.
func (w *wsOut) Render(p *netio.Piece) {
	ss := w.ss
	switch w.next {
	case nextMsg:
		frames := w.out[w.msgFrom:w.outAt]
		p.Count, p.At = len(frames), oldestAt(frames)
		if ss.deflate && w.renderDeflated(p, frames) {
			clear(frames)
			break
		}
		if len(frames) == 1 {
			p.B = frames[0].b
		} else {
			buf := p.Buffer()
			for i := range frames {
				buf = append(buf, frames[i].b...)
			}
			p.B = buf
		}
		p.Size = len(p.B)
		p.H = wsframe.AppendHeader(p.Hdr[:0], wsframe.OpBinary, len(p.B))
		clear(frames)
	case nextPing:
		p.H = wsframe.AppendHeader(p.Hdr[:0], wsframe.OpPing, 0)
	case nextPong:
		p.B, w.pongOut = w.pongOut, nil
		p.H = wsframe.AppendHeader(p.Hdr[:0], wsframe.OpPong, len(p.B))
	case nextBye:
		// bye is set before the turn can take it and not changed after.
		b := *ss.bye
		frame := protocol.MustEncode(protocol.Bye{T: protocol.TypeBye, Code: b.code, Msg: b.msg})
		buf := wsframe.AppendHeader(p.Buffer(), wsframe.OpBinary, len(frame))
		buf = append(buf, frame...)
		p.B = wsframe.AppendControl(buf, wsframe.OpClose, wsframe.CloseBody(int(b.code.CloseCode()), truncate(b.msg, 120)))
		p.Last = true
	case nextCloseReply:
		p.B = wsframe.AppendControl(p.Buffer(), wsframe.OpClose, wsframe.CloseBody(ss.closeReply, ""))
		p.Last = true
	}
}

// WroteLocked implements netio.Source. ss.mu held.
func (w *wsOut) WroteLocked(p *netio.Piece) {
	ss := w.ss
	if p.Count > 0 {
		ss.addQueued(-p.Size)
		ss.srv.cfg.Metrics.MessageOut(p.Count, p.Size)
		ss.wrote(p.At, p.Blocked)
	}
	if p.Last && ss.bye != nil {
		// The bye and the close went out: the client has CloseTimeout to
		// answer before the reader gives up.
		_ = ss.sock.SetReadDeadline(time.Now().Add(ss.srv.cfg.CloseTimeout))
	}
}

// Failed implements netio.Source: the connection is cut, and what was
// queued is forgotten.
func (w *wsOut) Failed() {
	ss := w.ss
	ss.mu.Lock()
	w.dropTakenLocked()
	ss.dropQueueLocked()
	ss.mu.Unlock()
	ss.abort()
}

// StalledLocked implements netio.Staller: a client whose socket took
// nothing more of a write for WriteTimeout has stopped reading, or reads
// slower than its rooms send. It is cut with slow_consumer, as when its
// queue overflows: what was queued is dropped, and it has ByeLinger to take
// the rest of the write and the bye. ss.mu held.
func (w *wsOut) StalledLocked() bool {
	ss := w.ss
	if ss.closing {
		return false
	}
	ss.cutSlowLocked("write timed out")
	return true
}

// dropTakenLocked forgets the frames the turn took and did not write. Turn
// holder, ss.mu held.
func (w *wsOut) dropTakenLocked() {
	ss := w.ss
	for i := w.outAt; i < len(w.out); i++ {
		ss.addQueued(-len(w.out[i].b))
	}
	clear(w.out)
	putQueue(w.out)
	w.out, w.outAt = nil, 0
}

// wrote records that writes went out: the time, for the idle ping, and the
// publish-to-write latency of the oldest durable event among them (oldest
// 0: none). Admission hears only of the writes the node made as soon as
// it could (a flusher's): one that waited for its client's socket to take
// more (blocked, the writer goroutine's) measures that client.
func (ss *session) wrote(oldest int64, blocked bool) {
	now := time.Now().UnixNano()
	ss.lastWrite.Store(now)
	if oldest != 0 {
		ss.srv.cfg.Metrics.PublishToWrite(time.Duration(now - oldest))
		if !blocked {
			ss.srv.adm.ObserveWrite(time.Duration(now - oldest))
		}
	}
}

// DroppedLocked implements netio.Source: a message that will not go out
// leaves the queued count. ss.mu held.
func (w *wsOut) DroppedLocked(p *netio.Piece) {
	ss := w.ss
	if p.Count > 0 {
		ss.addQueued(-p.Size)
	}
}
