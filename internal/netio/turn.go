package netio

import (
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/roomd/roomd/internal/wsframe"
)

// Due is what a source has to write next.
type Due uint8

const (
	// Idle: nothing is due; the turn ends.
	Idle Due = iota
	// Ready: the source took a piece for Render.
	Ready
	// Blocking: what is due next may only be written by a goroutine that
	// may block (the source took nothing). Only returned to a flusher.
	Blocking
)

// Source is what a Turn writes for: a WebSocket session, a raw SSE stream,
// a peer link. It keeps the queue, decides the order, and builds each piece;
// the Turn decides who writes it and how.
type Source interface {
	// Lock and Unlock are the source's lock, which guards its queue and
	// its Turn's state.
	sync.Locker
	// TakeLocked takes the next piece due off the source's queue, for
	// Render to build. mayBlock is true in the writer goroutine; a flusher
	// passes false, and gets Blocking for what it must not write. Lock held.
	TakeLocked(mayBlock bool) Due
	// Render fills p (empty) with the piece TakeLocked took, outside the
	// lock: the turn's holder is the only one to touch what was taken.
	Render(p *Piece)
	// WroteLocked: every byte of p went out. Lock held.
	WroteLocked(p *Piece)
	// DroppedLocked: p, or what was left of it, will never go out (the
	// connection failed or the turn was closed). Lock held.
	DroppedLocked(p *Piece)
	// Failed: a write failed, and the turn wrote nothing more. The source
	// closes its connection. Lock not held.
	Failed()
}

// Piece is one write: a header and a body, in that order, as one. The
// source fills it in Render; Count, Size and At are the source's own
// accounting, handed back to WroteLocked.
type Piece struct {
	H, B  []byte
	Count int   // messages or events in it
	Size  int   // bytes as the source counts them
	At    int64 // when the oldest of it was queued (unix ns; 0: none)
	// Last is the stream's last words: once written, the turn writes
	// nothing more (a WebSocket bye and close, the end of a chunked body).
	Last bool
	// Blocked: the writer goroutine wrote it, as the socket was full (or
	// the piece may block), so its delay is its client's as much as the
	// node's. Set for WroteLocked.
	Blocked bool

	Hdr [wsframe.MaxHeader]byte // room for H
	buf *[]byte                 // a pooled body buffer (Buffer), back after the write
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// Buffer returns an empty pooled buffer for a body that gathers several
// frames; store what was appended to it in B. Its array goes back to the
// pool once the piece is written (an array grown past it is left to the
// collector).
func (p *Piece) Buffer() []byte {
	if p.buf == nil {
		p.buf = bufPool.Get().(*[]byte)
	}
	return (*p.buf)[:0]
}

// reset empties p, giving its buffer back.
func (p *Piece) reset() {
	if p.buf != nil {
		bufPool.Put(p.buf)
	}
	*p = Piece{}
}

// Turn is a connection's write turn: at most one goroutine writes on the
// socket at a time, a flusher (non-blocking) or the turn's writer goroutine
// (blocking, with a deadline). A connection that keeps up costs one system
// call per piece and no goroutine; a full socket, or a piece the source
// says may block, gets a writer goroutine, which ends when nothing is due.
// The rest of a piece the socket took in part goes out first, whatever
// becomes due meanwhile, so frames never interleave.
//
// Fields marked "lock" are guarded by the source's lock; "turn" fields
// belong to whoever holds the turn.
type Turn struct {
	src     Source
	conn    net.Conn
	rc      syscall.RawConn // nil: every write goes through the writer goroutine
	under   syscall.RawConn // TLS: the TCP socket under conn (tls.go); else nil
	fl      *Flushers
	wr      *Writers
	wg      *sync.WaitGroup
	timeout time.Duration

	writing bool            // lock: a flusher or the writer goroutine holds the turn
	closed  bool            // lock: nothing more is written
	pending []byte          // lock: the rest of a piece the socket took in part
	pend    Piece           // lock: that piece's accounting
	done    chan struct{}   // lock: made on demand; closed when the turn ends
	hard    time.Time       // lock: a deadline that caps every write (shutdown's)
	linger  time.Time       // lock: the deadline of the last writes (LingerLocked)
	bounded syscall.RawConn // lock: the socket whose unsent bytes Open bounded, until LingerLocked lifts it

	p     Piece       // turn
	dw    directWrite // turn
	tw    tlsWrite    // turn
	dlSet time.Time   // turn: when the write deadline was last moved
	iov   [2][]byte   // turn: the buffers of a blocking writev
	tcp   bool        // the connection takes a writev (net.Buffers)
}

// TurnConfig is what a Turn writes on and with.
type TurnConfig struct {
	// Conn is the connection. Required.
	Conn net.Conn
	// Raw is its socket for non-blocking direct writes (RawConn); nil
	// means every write goes through the writer goroutine, but for TLS.
	Raw syscall.RawConn
	// Under is the TCP socket under a TLS Conn (Conn.Under): a flusher
	// writes a small piece through Conn when the socket has room for it
	// (tls.go).
	Under syscall.RawConn
	// Flushers make the non-blocking writes; nil means none (every write
	// through the writer goroutine).
	Flushers *Flushers
	// Writers lend the writer goroutine to a turn without non-blocking
	// writes (Raw or Flushers nil: TLS); nil means a goroutine of its own
	// each time.
	Writers *Writers
	// WG counts the writer goroutine. Required.
	WG *sync.WaitGroup
	// Timeout bounds a blocking write: it is cut after between 3/4 and all
	// of it. Required (positive).
	Timeout time.Duration
	// Unsent bounds the bytes the socket holds not yet sent (Linux:
	// TCP_NOTSENT_LOWAT), set by Conn.Open; zero leaves the kernel's.
	Unsent int
}

// Init sets the turn up for src before it is shared.
func (t *Turn) Init(src Source, c TurnConfig) {
	t.src, t.conn, t.rc, t.under, t.fl, t.wg, t.timeout = src, c.Conn, c.Raw, c.Under, c.Flushers, c.WG, c.Timeout
	if t.fl == nil || t.rc != nil {
		t.under = nil
	}
	if t.fl == nil {
		t.rc = nil
	}
	if t.rc == nil {
		t.wr = c.Writers
	}
	_, t.tcp = c.Conn.(*net.TCPConn)
}

// KickLocked gets what is due written, unless that is under way: it hands
// the turn to the flushers, or to a writer goroutine when there are none
// (or the rest of a piece is pending). Lock held.
func (t *Turn) KickLocked() {
	if t.writing || t.closed {
		return
	}
	t.writing = true
	if (t.rc == nil && t.under == nil) || len(t.pending) > 0 {
		t.toWriterLocked()
		return
	}
	t.fl.add(t)
}

// HoldLocked takes the turn for the caller's goroutine, which then makes
// the non-blocking writes due itself with WriteHeld, as a flusher would: a
// goroutine with nothing else to do meanwhile (a connection's reader,
// having answered what it read) saves the flushers a turn, and what it
// writes never waits in their queue behind other connections' fan-out,
// nor that fan-out behind it. It reports false when the turn is held or
// closed, or when what is due goes to the writer goroutine (handed there,
// as KickLocked does). Lock held.
func (t *Turn) HoldLocked() bool {
	if t.writing || t.closed {
		return false
	}
	t.writing = true
	if (t.rc == nil && t.under == nil) || len(t.pending) > 0 {
		t.toWriterLocked()
		return false
	}
	return true
}

// WriteHeld writes what is due on a turn HoldLocked took, until nothing
// is, and lets the turn go: one non-blocking try per piece, the rest to
// the writer goroutine. Lock not held.
func (t *Turn) WriteHeld() { t.run(false) }

// WritingLocked reports that the turn is held. Lock held.
func (t *Turn) WritingLocked() bool { return t.writing }

// PartialLocked reports that the rest of a piece is pending: the next
// bytes on the socket must be those. Lock held.
func (t *Turn) PartialLocked() bool { return len(t.pending) > 0 }

// DoneLocked returns a channel closed when the current turn ends (nil when
// none is held). Lock held.
func (t *Turn) DoneLocked() chan struct{} {
	if !t.writing {
		return nil
	}
	if t.done == nil {
		t.done = make(chan struct{})
	}
	return t.done
}

// CloseLocked ends the writing: nothing more is written (a write in flight
// ends when the connection closes). Lock held.
func (t *Turn) CloseLocked() {
	t.closed = true
	if len(t.pending) > 0 {
		t.pending = nil
		t.src.DroppedLocked(&t.pend)
		t.pend = Piece{}
	}
}

// CapDeadlineLocked caps every write from now on, the one in flight
// included, at dl (shutdown's deadline). Lock held.
func (t *Turn) CapDeadlineLocked(dl time.Time) {
	if !t.hard.IsZero() && !dl.Before(t.hard) {
		return
	}
	t.hard = dl
	_ = t.conn.SetWriteDeadline(dl)
}

// LingerLocked gives the writes still due, the one in flight included, until
// d from now, however long one write may take otherwise: a source that
// dropped what it queued and has only a last piece left (a bye after its
// client stopped reading) waits that long for the client to take it. Never
// past the hard deadline. Lock held.
//
// The last words also pass the socket's unsent bound (TurnConfig.Unsent):
// they go into its send buffer at once, behind what it holds, for a client
// that reads again to find, and the writes end there rather than wait.
func (t *Turn) LingerLocked(d time.Duration) {
	if t.bounded != nil {
		setUnsent(t.bounded, math.MaxInt32)
		t.bounded = nil
	}
	now := time.Now()
	t.linger = now.Add(d)
	t.dlSet = time.Time{}
	if t.writing {
		t.moveDeadlineLocked()
	}
}

func (t *Turn) toWriterLocked() {
	if t.wr != nil {
		t.wr.start(t)
		return
	}
	t.wg.Add(1)
	go t.writeLoop()
}

func (t *Turn) writeLoop() {
	defer t.wg.Done()
	t.run(true)
}

// run writes what is due until nothing is, as a flusher (block false: one
// non-blocking try per piece) or as the writer goroutine (block true).
func (t *Turn) run(block bool) {
	src := t.src
	p := &t.p
	src.Lock()
	for !t.closed {
		if len(t.pending) > 0 {
			if !block {
				t.toWriterLocked()
				src.Unlock()
				return
			}
			*p, t.pend = t.pend, Piece{}
			p.B, t.pending = t.pending, nil
			t.moveDeadlineLocked()
			src.Unlock()
		} else {
			switch src.TakeLocked(block) {
			case Idle:
				t.endLocked(block, false)
				return
			case Blocking:
				t.toWriterLocked()
				src.Unlock()
				return
			}
			src.Unlock()
			src.Render(p)
			if block {
				// A flusher writes at once (a close meanwhile fails its
				// write, or is seen on its next take); a writer may wait
				// for the socket, so it looks again first.
				src.Lock()
				if t.closed {
					src.DroppedLocked(p)
					break
				}
				t.moveDeadlineLocked()
				src.Unlock()
			}
		}
		var rest []byte
		var err error
		n := 0
		switch {
		case block:
			t.tw.credit = 0 // the socket's queue grows unseen by tlsWrite
			n, err = t.writeAll(p.H, p.B)
		case t.rc == nil: // TLS
			var ok bool
			if ok, err = t.tw.do(t, p.H, p.B); err == nil && !ok {
				rest = restOf(p.H, p.B, 0)
			}
		default:
			n, err = t.dw.do(t.rc, p.H, p.B)
			if err == nil && n < len(p.H)+len(p.B) {
				rest = restOf(p.H, p.B, n)
			}
		}
		src.Lock()
		if err != nil && block && n < len(p.H)+len(p.B) && t.stalledLocked(err) {
			// The source says its last words after what the socket has
			// begun to take: the rest of the piece goes out first.
			t.pending, t.pend = restOf(p.H, p.B, n), *p
			t.pend.H, t.pend.B, t.pend.buf = nil, nil, nil
			p.reset()
			continue
		}
		switch {
		case err != nil:
			src.DroppedLocked(p)
			p.reset()
			t.endLocked(block, true)
			return
		case rest != nil:
			t.pending, t.pend = rest, *p
			t.pend.H, t.pend.B, t.pend.buf = nil, nil, nil
			p.reset()
			t.toWriterLocked()
			src.Unlock()
			return
		}
		p.Blocked = block
		src.WroteLocked(p)
		if p.Last {
			t.closed = true
		}
		p.reset()
	}
	p.reset()
	t.endLocked(block, false)
}

// Staller is a Source told when its client stalls: a blocking write passed
// Timeout with the socket full, on a plain TCP turn (a TLS connection
// whose write timed out cannot write again) that has no linger or hard
// deadline yet.
type Staller interface {
	// StalledLocked reports whether the source ends the stream with last
	// words instead (LingerLocked, then a Last piece): the rest of the
	// piece in flight is kept, to go out first. False: the write fails
	// (Failed). Lock held.
	StalledLocked() bool
}

// stalledLocked: a blocking write failed with err; true when it was cut by
// Timeout and the source, a Staller, lingers for its last words instead of
// failing. Lock held.
func (t *Turn) stalledLocked(err error) bool {
	if !t.tcp || !errors.Is(err, os.ErrDeadlineExceeded) || !t.linger.IsZero() || !t.hard.IsZero() || t.closed {
		return false
	}
	st, ok := t.src.(Staller)
	return ok && st.StalledLocked() && !t.linger.IsZero()
}

// restOf copies what a write of n bytes of h and b left.
func restOf(h, b []byte, n int) []byte {
	rest := make([]byte, 0, len(h)+len(b)-n)
	if n < len(h) {
		return append(append(rest, h[n:]...), b...)
	}
	return append(rest, b[n-len(h):]...)
}

// endLocked ends the turn and unlocks; failed: a write failed, so the
// source hears of it. A writer lifts its deadline first: the flushers'
// non-blocking writes must not find it passed (a passed deadline fails
// every write on the socket). (A flusher's write through TLS moves the
// deadline itself: tlsWrite.)
func (t *Turn) endLocked(block, failed bool) {
	if failed {
		t.CloseLocked()
	}
	if block && t.hard.IsZero() {
		t.dlSet = time.Time{}
		_ = t.conn.SetWriteDeadline(time.Time{})
	}
	t.writing = false
	done := t.done
	t.done = nil
	t.src.Unlock()
	if failed {
		t.src.Failed()
	}
	if done != nil {
		close(done)
	}
}

// moveDeadlineLocked moves the write deadline to Timeout from now when a
// quarter of it has passed, rather than before every write (setting it is
// a timer operation, a tenth of a small write's cost); to the linger
// deadline once there is one; never past the hard deadline. Lock held,
// and the turn, or a writer in flight (LingerLocked).
func (t *Turn) moveDeadlineLocked() {
	now := time.Now()
	if now.Sub(t.dlSet) < t.timeout/4 {
		return
	}
	t.dlSet = now
	dl := now.Add(t.timeout)
	if !t.linger.IsZero() {
		dl = t.linger
	}
	if !t.hard.IsZero() && t.hard.Before(dl) {
		dl = t.hard
	}
	_ = t.conn.SetWriteDeadline(dl)
}

// moveDeadline is moveDeadlineLocked for a flusher, which holds the turn
// but not the lock: it takes the lock only when the deadline moves.
func (t *Turn) moveDeadline() {
	if time.Since(t.dlSet) < t.timeout/4 {
		return
	}
	t.src.Lock()
	t.moveDeadlineLocked()
	t.src.Unlock()
}

// joinPool holds the buffers that join a piece's header and body for one
// Write; one grown past joinMax is left to the collector.
var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const joinMax = 16 << 10

// writeAll writes h and b, blocking up to the deadline: in one writev on a
// TCP socket, or in one Write elsewhere (TLS: one record).
func (t *Turn) writeAll(h, b []byte) (int, error) {
	switch {
	case len(h) == 0:
		return t.conn.Write(b)
	case len(b) == 0:
		return t.conn.Write(h)
	case t.tcp:
		t.iov[0], t.iov[1] = h, b
		bufs := net.Buffers(t.iov[:])
		n, err := bufs.WriteTo(t.conn)
		t.iov = [2][]byte{}
		return int(n), err
	}
	jb := joinPool.Get().(*[]byte)
	buf := append(append((*jb)[:0], h...), b...)
	n, err := t.conn.Write(buf)
	if cap(buf) <= joinMax {
		*jb = buf[:0]
		joinPool.Put(jb)
	}
	return n, err
}
