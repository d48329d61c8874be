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

var _ netio.Source = (*session)(nil)

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
func (ss *session) TakeLocked(mayBlock bool) netio.Due {
	if ss.closing {
		ss.dropTakenLocked()
		ss.dropQueueLocked()
		switch {
		case ss.bye != nil && !ss.byeTaken:
			ss.next = nextBye
		case ss.closeReply != 0:
			ss.next = nextCloseReply
		default:
			return netio.Idle
		}
		if !mayBlock {
			return netio.Blocking
		}
		ss.byeTaken = true
		return netio.Ready
	}
	if ss.pongDue || ss.pingDue {
		if !mayBlock {
			return netio.Blocking
		}
		if ss.pongDue {
			ss.next, ss.pongOut = nextPong, ss.pong
			ss.pongDue, ss.pong = false, nil
		} else {
			ss.next = nextPing
			ss.pingDue = false
		}
		return netio.Ready
	}
	if ss.outAt == len(ss.out) {
		putQueue(ss.out)
		ss.out, ss.outAt = nil, 0
		if len(ss.queue) == 0 {
			return netio.Idle
		}
		// Take everything queued; the queue's array goes with it, so an
		// idle session keeps no slice.
		ss.out, ss.queue = ss.queue, nil
	}
	ss.next, ss.msgFrom = nextMsg, ss.outAt
	ss.outAt, _ = batchEnd(ss.out, ss.outAt)
	return netio.Ready
}

// Render implements netio.Source: it builds the piece TakeLocked took.
// Turn holder only.
func (ss *session) Render(p *netio.Piece) {
	switch ss.next {
	case nextMsg:
		frames := ss.out[ss.msgFrom:ss.outAt]
		p.Count, p.At = len(frames), oldestAt(frames)
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
		p.B, ss.pongOut = ss.pongOut, nil
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
func (ss *session) WroteLocked(p *netio.Piece) {
	if p.Count > 0 {
		ss.addQueued(-p.Size)
		ss.srv.cfg.Metrics.MessageOut(p.Count, p.Size)
		ss.wrote(p.At)
	}
	if p.Last && ss.bye != nil {
		// The bye and the close went out: the client has CloseTimeout to
		// answer before the reader gives up.
		_ = ss.conn.SetReadDeadline(time.Now().Add(ss.srv.cfg.CloseTimeout))
	}
}

// Failed implements netio.Source: the connection is cut, and what was
// queued is forgotten.
func (ss *session) Failed() {
	ss.mu.Lock()
	ss.dropTakenLocked()
	ss.dropQueueLocked()
	ss.mu.Unlock()
	ss.abort()
}

// dropTakenLocked forgets the frames the turn took and did not write. Turn
// holder, ss.mu held.
func (ss *session) dropTakenLocked() {
	for i := ss.outAt; i < len(ss.out); i++ {
		ss.addQueued(-len(ss.out[i].b))
	}
	clear(ss.out)
	putQueue(ss.out)
	ss.out, ss.outAt = nil, 0
}

// wrote records that writes went out: the time, for the idle ping, and the
// publish-to-write latency of the oldest durable event among them (oldest
// 0: none).
func (ss *session) wrote(oldest int64) {
	now := time.Now().UnixNano()
	ss.lastWrite.Store(now)
	if oldest != 0 {
		ss.srv.cfg.Metrics.PublishToWrite(time.Duration(now - oldest))
	}
}

// DroppedLocked implements netio.Source: a message that will not go out
// leaves the queued count. ss.mu held.
func (ss *session) DroppedLocked(p *netio.Piece) {
	if p.Count > 0 {
		ss.addQueued(-p.Size)
	}
}
