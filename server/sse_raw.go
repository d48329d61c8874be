package server

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/internal/netio"
)

// Raw streams. On plain TCP over HTTP/1.x, once a stream's rooms answered,
// the observer takes the connection from net/http (Hijack) and writes the
// response itself through a write turn (internal/netio), as WebSocket
// sessions do: Deliver queues the event and kicks the turn, and the
// server's flushers render what is queued into one chunk and write it
// without blocking; only a full socket or the stream's last words (bye) get
// a writer goroutine. So a delivery costs no
// goroutine wake-up, no timer and no flush through net/http's buffers. The
// handler's goroutine stays, blocked in a read of the socket: a stream's
// client sends nothing, so that read ends only when the client goes (or the
// stream is closed from here); its timeout is the ": ping" interval.
// Elsewhere (TLS, HTTP/2, platforms without canIdleShallow) the handler's
// goroutine writes the stream through net/http's ResponseWriter, flushing
// each batch (sse_observer.go).

// rawStream is what an observer holds once it writes its own response.
//
// Between writes a stream keeps only this struct and the observer: net/http's
// connection, buffers and request go with the handler (o.rc is dropped),
// and each chunk is rendered into a pooled buffer that goes back once it is
// written (netio.Piece.Buffer).
type rawStream struct {
	o        *sseObserver
	sock     netio.Conn   // its Turn: o.mu
	ping     *time.Timer  // a detached stream's ping
	last     atomic.Int64 // unix ns of the last write
	detached bool         // the handler returned: endDetached ends the stream
	chunked  bool         // HTTP/1.1: the body is chunked; 1.0: it ends with the connection
	pingDue  bool         // o.mu: write ": ping" next
	done     bool         // o.mu: the last chunk went out (or failed): no more writes
	ending   bool         // o.mu: endDetached ran (or runs)

	// Turn-owned: what TakeLocked took, and the rendering. The batch's
	// array and its cost (the piece's Size) count as queued until the
	// chunk is written or dropped, as a session's frames do.
	pingOut bool
	batch   []sseItem
	byeOut  *byeFrame
	left    *byeFrame // a KindLeft in the chunk: the stream's bye once it is written
	sw      sseWriter // renders into the piece's buffer
}

// streamRaw writes the response head and streams through the flushers. It
// reports taken false when the connection cannot be taken (the caller
// streams through net/http then). With detached true the handler returns at
// once: the stream's socket waits in the server's parker for the client to
// go (no goroutine at all), a timer pings it, and endDetached leaves its
// rooms when it ends. Otherwise (no parker) the handler waits here, blocked
// in a read of the socket, until the stream ends.
func (o *sseObserver) streamRaw(ctx context.Context, w http.ResponseWriter, r *http.Request) (taken, detached bool) {
	if !netio.CanDirect || r.ProtoMajor != 1 || r.TLS != nil {
		return false, false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false, false
	}
	if brw.Reader.Buffered() > 0 { // a stream's client sends nothing more
		_ = conn.Close()
		return true, false
	}
	// Not a TCP socket (no Raw): every write goes through the writer.
	rs := &rawStream{o: o, chunked: r.ProtoAtLeast(1, 1)}
	rs.sock.Open(conn, rs, o.srv.cfg.ParkAfter > 0, netio.TurnConfig{Flushers: &o.srv.flush, WG: &o.srv.wg, Timeout: o.srv.cfg.WriteTimeout, Unsent: o.srv.cfg.SocketUnsentBytes})

	// The head and the retry line: a blocking write, before anything queued.
	head := appendResponseHead(nil, w.Header(), rs.chunked)
	var p netio.Piece
	rs.sw.reset(nil)
	rs.sw.retry(o.srv.cfg.SSERetry)
	rs.frame(&p)
	head = append(append(head, p.H...), p.B...)
	_ = conn.SetWriteDeadline(time.Now().Add(o.srv.cfg.WriteTimeout))
	if _, err := conn.Write(head); err != nil {
		_ = conn.Close()
		return true, false
	}
	_ = conn.SetWriteDeadline(time.Time{}) // a passed deadline would fail the flushers' writes
	rs.last.Store(time.Now().UnixNano())

	o.mu.Lock()
	o.raw = rs
	// The net/http writer's: o.rc would keep net/http's connection (its
	// read and write buffers, the request) for the stream's life.
	o.rc, o.wake = nil, nil
	if rs.sock.FD > 0 && o.srv.park.Park(o, rs.sock.FD) {
		rs.detached = true
		rs.ping = time.AfterFunc(o.srv.cfg.SSEPingInterval, o.pingTick)
		o.srv.parkedSSE.Add(1)
		o.srv.release.ParkedOne()
	}
	if len(o.queue) > 0 || o.bye != nil {
		o.kickLocked()
	}
	o.mu.Unlock()
	if rs.detached {
		return true, true
	}

	// Wait for the client to go, pinging an idle stream.
	interval := o.srv.cfg.SSEPingInterval
	var one [1]byte
	for ctx.Err() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(interval))
		_, err := conn.Read(one[:])
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if time.Since(time.Unix(0, rs.last.Load())) >= interval-interval/10 {
				o.mu.Lock()
				rs.pingDue = true
				o.kickLocked()
				o.mu.Unlock()
			}
			continue
		}
		break // EOF, bytes a stream's client must not send, or closed here
	}
	o.mu.Lock()
	o.endLocked()
	o.mu.Unlock()
	_ = conn.Close()
	return true, false
}

// endLocked stops the stream: nothing more is queued or written. o.mu held.
func (o *sseObserver) endLocked() {
	rs := o.raw
	o.ended = true
	rs.done = true
	rs.sock.CloseLocked()
	for _, it := range o.queue {
		o.qbytes -= it.cost
	}
	clear(o.queue)
	o.queue = o.queue[:0]
	if rs.ping != nil {
		rs.ping.Stop()
	}
}

// pingTick pings a detached stream that wrote nothing for an interval.
func (o *sseObserver) pingTick() {
	rs := o.raw
	interval := o.srv.cfg.SSEPingInterval
	o.mu.Lock()
	defer o.mu.Unlock()
	if rs.done {
		return
	}
	if time.Since(time.Unix(0, rs.last.Load())) >= interval-interval/10 {
		rs.pingDue = true
		o.kickLocked()
	}
	rs.ping.Reset(interval)
}

var _ netio.Parkee = (*sseObserver)(nil)

// ParkEvent implements netio.Parkee: a detached stream's client sent bytes
// (it must not) or went.
func (o *sseObserver) ParkEvent() { go o.endDetached() }

// ParkStopped implements netio.Parkee: Shutdown stopped the parker; the
// stream ends with the bye Shutdown queued for it.
func (o *sseObserver) ParkStopped() {}

// endDetached ends a detached stream once: its socket leaves the parker
// before it closes, and the observer leaves its rooms and the server.
func (o *sseObserver) endDetached() {
	rs := o.raw
	o.mu.Lock()
	if rs.ending {
		o.mu.Unlock()
		return
	}
	rs.ending = true
	o.endLocked()
	o.mu.Unlock()
	o.srv.park.Unpark(rs.sock.FD)
	_ = rs.sock.Close()
	o.srv.parkedSSE.Add(-1)
	o.leave(o.roomNames()) // a detached stream joined every room
	o.srv.removeObserver(o)
}

// appendResponseHead appends the status line and headers of a stream.
func appendResponseHead(b []byte, h http.Header, chunked bool) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
	}
	b = append(append(append(b, "Date: "...), time.Now().UTC().Format(http.TimeFormat)...), "\r\n"...)
	if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(b, "\r\n"...)
}

// frame makes p the chunk of what rs.sw rendered: its size line in p.H,
// the body and the chunk's end in p.B (the bytes as they are in HTTP/1.0).
func (rs *rawStream) frame(p *netio.Piece) {
	body := rs.sw.buf
	rs.sw.buf = nil
	if rs.chunked && len(body) > 0 {
		p.H = strconv.AppendInt(p.Hdr[:0], int64(len(body)), 16)
		p.H = append(p.H, "\r\n"...)
		body = append(body, "\r\n"...)
	}
	p.B = body
}

// kickLocked gets what is queued written, unless that is under way. o.mu
// held.
func (o *sseObserver) kickLocked() {
	if !o.raw.done {
		o.raw.sock.KickLocked()
	}
}

// A raw stream is the netio.Source of its write turn: each piece is one
// chunk, rendered from everything queued (and a ": ping" owed), or the bye
// and the body's end, which only the writer goroutine writes.

var _ netio.Source = (*rawStream)(nil)

// Lock and Unlock are the observer's o.mu.
func (rs *rawStream) Lock()   { rs.o.mu.Lock() }
func (rs *rawStream) Unlock() { rs.o.mu.Unlock() }

// TakeLocked implements netio.Source. o.mu held.
func (rs *rawStream) TakeLocked(mayBlock bool) netio.Due {
	o := rs.o
	if rs.done {
		return netio.Idle
	}
	if o.bye != nil {
		if !mayBlock {
			return netio.Blocking
		}
		rs.byeOut = o.bye
		return netio.Ready
	}
	if len(o.queue) == 0 && !rs.pingDue {
		return netio.Idle
	}
	rs.batch, _ = o.takeLocked()
	rs.pingOut, rs.pingDue = rs.pingDue, false
	return netio.Ready
}

// Render implements netio.Source: one chunk.
func (rs *rawStream) Render(p *netio.Piece) {
	o := rs.o
	rs.sw.reset(p.Buffer())
	if bye := rs.byeOut; bye != nil {
		rs.byeOut = nil
		o.srv.byeCode(bye.code)
		rs.sw.bye(*bye)
		rs.frame(p)
		if rs.chunked {
			p.B = append(p.B, "0\r\n\r\n"...)
		}
		p.Count, p.Last = 1, true
		return
	}
	if len(rs.batch) > 0 {
		rs.left = o.writeBatch(&rs.sw, rs.batch)
	}
	if rs.pingOut {
		rs.sw.ping()
	}
	for i := range rs.batch {
		p.Size += rs.batch[i].cost
	}
	clear(rs.batch)
	rs.pingOut = false
	rs.frame(p)
	p.Count = max(rs.sw.events, 1)
}

// WroteLocked implements netio.Source. o.mu held.
func (rs *rawStream) WroteLocked(p *netio.Piece) {
	rs.giveBackLocked(p)
	rs.last.Store(time.Now().UnixNano())
	rs.o.srv.cfg.Metrics.MessageOut(p.Count, len(p.B))
	if p.Last {
		rs.o.failedLocked() // the stream ends here
		return
	}
	if left := rs.left; left != nil {
		rs.left = nil
		rs.o.cutLocked(*left, time.Time{})
	}
}

// DroppedLocked implements netio.Source. o.mu held.
func (rs *rawStream) DroppedLocked(p *netio.Piece) {
	rs.giveBackLocked(p)
	rs.left = nil
}

// giveBackLocked gives the written (or dropped) piece's cost and its
// batch's array back to the queue. o.mu held.
func (rs *rawStream) giveBackLocked(p *netio.Piece) {
	rs.o.giveBackLocked(rs.batch, p.Size)
	rs.batch = nil
}

// Failed implements netio.Source.
func (rs *rawStream) Failed() {
	rs.o.mu.Lock()
	rs.o.failedLocked()
	rs.o.mu.Unlock()
}

// failedLocked ends a raw stream from the writing side: nothing more is
// written, and the handler's read ends (or, detached, the stream ends).
// o.mu held.
func (o *sseObserver) failedLocked() {
	rs := o.raw
	rs.done = true
	rs.sock.CloseLocked()
	o.ended = true
	if rs.detached {
		go o.endDetached() // it unparks the socket before closing it
		return
	}
	_ = rs.sock.Close()
}
