package server

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/internal/wsframe"
)

// An idle connection's cost was mostly the stack of its reader, deep in a
// frame read. So on plain TCP a session waits for its next bytes in a
// shallow frame, taking pongs itself (netio.WaitFrame),
// and reads frames (wsframe.Reader) only when a message starts; and once it
// has sent no message for ParkAfter it parks: its socket waits in the
// server's epoll set (park_linux.go) and it keeps no goroutine, read buffer
// or rate limiter at all until bytes arrive.
//
// Over TLS, whose records hide what the socket holds, a session waits by
// reading through the TLS connection into its read buffer, takes the pings
// and pongs found there, and parks the TCP socket underneath once the TLS
// connection holds nothing more (idleReadTLS, netio.DrainTLS); any bytes
// that arrive wake it, pongs included.

// ownReader gives the upgrade (gorilla's handshake) a read buffer the
// session then reads frames from, so it knows when no bytes are buffered
// and waiting on the socket is right.
type ownReader struct {
	http.ResponseWriter
	size int
	br   *bufio.Reader
}

func (o *ownReader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := o.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil || rw.Reader.Buffered() > 0 {
		return c, rw, err // gorilla refuses early bytes anyway
	}
	o.br = bufio.NewReaderSize(c, o.size)
	return c, bufio.NewReadWriter(o.br, rw.Writer), nil
}

// idleRead waits, shallowly, for the start of the next message. After
// ParkAfter without one it parks the session instead (parked: the
// goroutine must end; see serve). err is set only when waiting failed
// (deadline, closed socket).
func (ss *session) idleRead() (parked bool, err error) {
	if ss.sock.TLS != nil {
		return ss.idleReadTLS()
	}
	if ss.sock.Raw == nil || ss.br == nil {
		return false, nil
	}
	for ss.br.Buffered() == 0 {
		canPark := ss.sock.FD > 0 && ss.id != "" && !ss.isClosing()
		dl := ss.readDL.Load()
		// Idle means no message since lastMsg: pongs do not count.
		parkAt := time.Unix(0, ss.lastMsg).Add(ss.srv.cfg.ParkAfter)
		if dl == 0 || !parkAt.Before(time.Unix(0, dl)) || time.Now().UnixNano() >= dl {
			canPark = false // the real deadline comes first (or has passed: fail the read)
		}
		if canPark && !parkAt.After(time.Now()) {
			if !netio.Readable(ss.sock.Raw) && ss.tryPark() {
				return true, nil
			}
			canPark = false // bytes to read first (or the parker is unavailable)
		}
		if canPark {
			_ = ss.sock.SetReadDeadline(parkAt)
		}
		pong, err := netio.WaitFrame(ss.sock.Raw)
		if canPark {
			parkTime := errors.Is(err, os.ErrDeadlineExceeded)
			if ss.isClosing() {
				// Closing began meanwhile: wait for the client's close
				// reply for the close timeout, as after a bye.
				_ = ss.sock.SetReadDeadline(time.Now().Add(ss.srv.cfg.CloseTimeout))
			} else {
				_ = ss.sock.SetReadDeadline(time.Unix(0, dl)) // back to the real one
			}
			if parkTime {
				continue // park now (or, closing, wait for the close)
			}
		}
		if err != nil {
			return false, err
		}
		if !pong {
			return false, nil
		}
		ss.extendRead()
	}
	return false, nil
}

// idleReadTLS is idleRead over TLS: it reads through the TLS connection
// into ss.br, with a deadline at the time to park; then, once the TLS
// connection holds nothing more and the socket under it is quiet, it
// parks. Woken, it reads what arrived, for ParkAfter at most (a record may
// come in parts) before it tries to park again.
func (ss *session) idleReadTLS() (parked bool, err error) {
	var ctl netio.Control
	for {
		if ss.br.Buffered() > 0 {
			switch ctl.Take(ss.br); ctl.Op {
			case wsframe.OpPong:
				ss.extendRead()
			case wsframe.OpPing:
				ss.onPing(ctl.Data())
			default:
				return false, nil // a message starts
			}
			continue
		}
		canPark := ss.sock.FD > 0 && ss.id != "" && !ss.isClosing()
		dl := ss.readDL.Load()
		now := time.Now()
		parkAt := time.Unix(0, ss.lastMsg).Add(ss.srv.cfg.ParkAfter)
		if dl == 0 || now.UnixNano() >= dl {
			canPark = false // the real deadline has passed (or there is none yet)
		}
		if canPark && !parkAt.After(now) {
			more, err := netio.DrainTLS(ss.sock.Conn, ss.br, time.Unix(0, dl))
			if err != nil {
				return false, err
			}
			if more {
				continue
			}
			if !netio.Readable(ss.sock.Under) && ss.tryPark() {
				return true, nil
			}
			parkAt = now.Add(ss.srv.cfg.ParkAfter) // bytes on the socket: read them first
		}
		if !parkAt.Before(time.Unix(0, dl)) {
			canPark = false // the real deadline comes first
		}
		if canPark {
			_ = ss.sock.SetReadDeadline(parkAt)
		}
		_, err := ss.br.Peek(1)
		if canPark {
			if ss.isClosing() {
				_ = ss.sock.SetReadDeadline(time.Now().Add(ss.srv.cfg.CloseTimeout))
			} else {
				_ = ss.sock.SetReadDeadline(time.Unix(0, dl))
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // park now (or, closing, wait for the close)
			}
		}
		if err != nil && ss.br.Buffered() == 0 {
			return false, err
		}
	}
}

// tryPark hands the idle session's socket to the parker, and its read
// buffer back to the heap. It fails when the session is closing (its reader
// waits for the close) or the parker cannot take it.
func (ss *session) tryPark() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closing || !ss.srv.park.Park(ss, ss.sock.FD) {
		return false
	}
	ss.parked = true
	*ss.br = bufio.Reader{} // nothing is buffered: serve makes a new one
	ss.releaseLimiters()
	ss.srv.parkedN.Add(1)
	ss.srv.release.ParkedOne()
	ss.rearmPingTimerLocked()
	return true
}

var _ netio.Parkee = (*session)(nil)

// ParkEvent implements netio.Parkee: it wakes the session, unless all it
// got were pongs.
func (ss *session) ParkEvent() {
	if !ss.pongWhileParked() {
		ss.wakeUp()
	}
}

// ParkStopped implements netio.Parkee: Shutdown stopped the parker.
func (ss *session) ParkStopped() { ss.wakeUp() }

// pongWhileParked takes the client's pongs from a parked session's socket
// without waking it, when pongs are all there is: it moves the read
// deadline and re-arms the socket in the parker. It reports false when the
// session must wake (a message, the peer gone, or it is not parked).
func (ss *session) pongWhileParked() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.parked || ss.closing || ss.sock.Raw == nil {
		return false // over TLS a goroutine reads the pongs
	}
	took := false
	for netio.TakePong(ss.sock.Raw) {
		took = true
	}
	if !took || netio.Readable(ss.sock.Raw) || !ss.srv.park.Rearm(ss.sock.FD) {
		return false
	}
	cfg := &ss.srv.cfg
	dl := time.Now().Add(cfg.PingInterval + cfg.PongTimeout)
	ss.readDL.Store(dl.UnixNano())
	_ = ss.sock.SetReadDeadline(dl)
	return true
}

// wakeUp gives a parked session a reader goroutine again: bytes arrived,
// its read deadline passed, it is closing or being cut.
func (ss *session) wakeUp() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.wakeUpLocked()
}

// wakeUpLocked is wakeUp with ss.mu held.
func (ss *session) wakeUpLocked() {
	if !ss.parked {
		return
	}
	ss.parked = false
	ss.srv.parkedN.Add(-1)
	ss.srv.parkWakes.Add(1)
	ss.srv.park.Unpark(ss.sock.FD)
	go ss.serve()
}
