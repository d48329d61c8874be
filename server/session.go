package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// session is one WebSocket connection: the protocol (hello, rooms, ops) and
// the outbound policy (outbound.go). Its reader runs in a goroutine of its
// own while the connection talks, and parks when it idles (idle.go); its
// frames go out through its write turn (internal/netio, ws_write.go).
//
// Lock order: a room's lock, then s.mu (rooms call Deliver with theirs held).
// The session never calls into a room while holding s.mu. docs/LOCKS.md.
type session struct {
	srv  *Server
	sock netio.Conn // the socket, once upgraded, and its write turn (guarded by mu)
	log  *slog.Logger

	// Set before the session is shared, then read-only.
	id    string
	user  string
	addr  netip.Addr // source address, as the per-address limits count it
	ident atomic.Pointer[auth.Identity]
	// deflate: the connection negotiated permessage-deflate (ws_deflate.go).
	deflate bool

	lastWrite atomic.Int64 // unix ns of the last message written
	readDL    atomic.Int64 // unix ns: the read deadline extendRead set (0: none)

	mu         sync.Mutex
	queue      []outItem
	qbytes     int // queued and taken by the turn, not yet written
	pingDue    bool
	pong       []byte // a client ping's data, for the writer to answer
	pongDue    bool
	closing    bool
	bye        *byeFrame
	closeReply int // the client's close code, to echo (0: none owed)
	ephDropped int
	rooms      roomSet // joined rooms
	claims     uint64  // joins numbered so far (roomSet)
	pingTimer  *time.Timer
	expTimer   *time.Timer

	out wsOut // the write turn's source (ws_write.go)

	ops roomOps // room operations, off the reader (roomops.go)

	parked   bool      // s.mu: the socket waits in the parker, no goroutine reads
	held     bool      // s.mu: the session's own frames wait for its reader to write them (writeOwn)
	lastMsg  int64     // reader-owned: unix ns of the last message (or welcome)
	nextPing time.Time // s.mu: when the ping timer next owes a ping

	// Reader-owned.
	br        *bufio.Reader // gorilla's read buffer (see idle.go)
	pending   bool          // counted in Server.pending
	httpToken string        // token from the upgrade request, if any
	frames    *rate.Limiter // nil while parked: see parkedLimits
	bytesIn   *rate.Limiter
	strikes   *rate.Limiter
	limits    *parkedLimits
	split     [][]byte

	hookReq *hooks.ConnectRequest // reader-owned: what the connect hook is told (hooks.go); nil when it is off
}

var _ room.Subscriber = (*session)(nil)

type byeFrame struct {
	code protocol.Code
	msg  string
}

var codeShutdownBye = byeFrame{protocol.CodeShutdown, "server shutting down"}

var msgBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putMsgBuf returns an inbound message buffer to the pool, unless it grew
// past what a message may be.
func putMsgBuf(buf *bytes.Buffer, maxMessage int) {
	if buf.Cap() <= 2*maxMessage {
		msgBufPool.Put(buf)
	}
}

func (s *Server) upgradeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	code := protocol.CodeBadRequest
	if status == http.StatusForbidden { // the origin allow-list
		code = protocol.CodeForbidden
	}
	writeAPIError(w, status, code, reason.Error())
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if offered := websocket.Subprotocols(r); len(offered) > 0 && !contains(offered, protocol.Subprotocol) {
		writeAPIError(w, http.StatusBadRequest, protocol.CodeUnsupported,
			"unsupported subprotocol; this server speaks "+protocol.Subprotocol)
		return
	}
	addr := s.clientAddr(r)
	s.mu.Lock()
	draining := s.draining
	full := s.pending >= s.cfg.MaxPending
	limit := ""
	if !draining && !full {
		limit = s.admitAddrLocked(addr, true)
	}
	if !draining && !full && limit == "" {
		s.wg.Add(1)
		s.pending++
	}
	s.mu.Unlock()
	switch {
	case draining:
		writeAPIError(w, http.StatusServiceUnavailable, protocol.CodeShutdown, "server shutting down")
		return
	case full:
		s.cfg.Metrics.LimitRefused(limitPending)
		writeAPIError(w, http.StatusServiceUnavailable, protocol.CodeOverloaded, "too many connections waiting for hello")
		return
	case limit != "":
		s.refuseAddr(w, limit)
		return
	}
	ss := &session{srv: s, log: s.cfg.Logger, addr: addr, pending: true, httpToken: auth.TokenFromRequest(r, false)}
	ss.hookReq = s.connectRequest(r, addr)
	own := &ownReader{ResponseWriter: w, size: s.cfg.ReadBufferSize}
	up, deflate := s.upgraderFor(r)
	ss.deflate = deflate
	conn, err := up.Upgrade(own, r, nil)
	if err != nil {
		ss.notPending()
		s.wg.Done()
		return // the upgrader answered
	}
	// From here roomd reads and writes the frames (wsframe): gorilla's
	// Conn is left behind.
	ss.out.ss = ss
	ss.sock.Open(conn.NetConn(), &ss.out, s.cfg.ParkAfter > 0, netio.TurnConfig{Flushers: &s.flush, Writers: &s.writers, WG: &s.wg, Timeout: s.cfg.WriteTimeout, Unsent: s.cfg.SocketUnsentBytes})
	ss.br = own.br
	if ss.br == nil {
		ss.br = bufio.NewReaderSize(ss.sock.Conn, s.cfg.ReadBufferSize)
	}
	// The session reads in a goroutine of its own and the handler returns,
	// so that net/http lets go of the request, its buffers and the deep
	// stack of its connection goroutine: an idle connection keeps only
	// what the session needs.
	go ss.run()
}

// notPending takes the session off the count of connections without hello.
func (ss *session) notPending() {
	if !ss.pending {
		return
	}
	ss.pending = false
	ss.srv.mu.Lock()
	ss.srv.pending--
	ss.srv.releaseAddrLocked(ss.addr)
	ss.srv.mu.Unlock()
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// run is the reader loop. When it returns the connection is closed and the
// session has left every room.
func (ss *session) run() {
	_ = ss.sock.SetReadDeadline(time.Now().Add(ss.srv.cfg.HelloTimeout))
	ss.newLimiters()
	ss.serve()
}

// serve reads messages until the connection ends (then the session leaves
// its rooms and is gone) or until it parks: idle for ParkAfter, it hands its
// socket to the server's parker and the goroutine ends; bytes arriving call
// serve again in a new one (idle.go). The session holds its count in the
// server's wait group throughout.
func (ss *session) serve() {
	cfg := &ss.srv.cfg
	if ss.br.Size() == 0 {
		*ss.br = *bufio.NewReaderSize(ss.sock.Conn, cfg.ReadBufferSize) // released while parked
	}
	if ss.limits != nil {
		ss.restoreLimiters()
	}
	// Frames are read here (wsframe) and written through the write turn:
	// a client's ping is answered through the turn too.
	rd := wsframe.Reader{Masked: true, Deflate: ss.deflate, OnPong: func([]byte) { ss.extendRead() }, OnPing: ss.onPing}
read:
	for {
		if !wsframe.WholeMessage(buffered(ss.br)) {
			ss.writeOwn() // what the reader read is answered before it may wait
		}
		parked, err := ss.idleRead()
		if parked {
			return
		}
		if err != nil {
			ss.readFailed(err)
			break
		}
		// A buffer from the pool for each message, not one per connection:
		// idle connections hold none.
		buf := msgBufPool.Get().(*bytes.Buffer)
		buf.Reset()
		op, err := rd.ReadMessage(ss.br, buf, cfg.MaxMessageBytes)
		switch {
		case err == nil && ss.isClosing():
			// drain until the client's close or the close timeout
		case errors.Is(err, wsframe.ErrTooLarge):
			ss.inflateTooLarge(err)
			ss.close(byeFrame{protocol.CodeTooLarge, "message over the size limit"})
		case err != nil:
			putMsgBuf(buf, cfg.MaxMessageBytes)
			ss.writeOwn()
			ss.readFailed(err)
			break read
		case op != wsframe.OpBinary:
			ss.close(byeFrame{protocol.CodeBadProtocol, "text messages are not allowed"})
		default:
			ss.extendRead()
			ss.lastMsg = time.Now().UnixNano()
			ss.holdOwn()
			ss.handleMessage(buf.Bytes())
		}
		putMsgBuf(buf, cfg.MaxMessageBytes)
	}
	ss.cleanup()
	ss.notPending()
	ss.srv.wg.Done()
}

// onPing queues the pong a client's ping asks for.
func (ss *session) onPing(data []byte) {
	ss.extendRead()
	ss.mu.Lock()
	if !ss.closing {
		ss.pong, ss.pongDue = bytes.Clone(data), true
		ss.sock.KickLocked()
	}
	ss.mu.Unlock()
}

// newLimiters makes the inbound rate limiters, full.
func (ss *session) newLimiters() {
	cfg := &ss.srv.cfg
	ss.frames = rate.NewLimiter(rate.Limit(cfg.FrameRate), cfg.FrameBurst)
	ss.bytesIn = rate.NewLimiter(rate.Limit(cfg.ByteRate), max(cfg.ByteRate, cfg.MaxMessageBytes))
	ss.strikes = rate.NewLimiter(rate.Limit(float64(cfg.FloodStrikes)/10), cfg.FloodStrikes)
}

// parkedLimits is what the inbound limiters held when the session parked:
// a parked session keeps these few numbers instead of three limiters, and
// gets limiters back exactly where they were (refilled since).
type parkedLimits struct {
	at                       time.Time
	frames, bytesIn, strikes float64
}

// releaseLimiters trades the limiters for their levels. Reader only.
func (ss *session) releaseLimiters() {
	now := time.Now()
	ss.limits = &parkedLimits{at: now, frames: ss.frames.TokensAt(now), bytesIn: ss.bytesIn.TokensAt(now), strikes: ss.strikes.TokensAt(now)}
	ss.frames, ss.bytesIn, ss.strikes = nil, nil, nil
}

// restoreLimiters makes limiters at their parked levels, as of the time the
// session parked, so that they refill from then. Reader only.
func (ss *session) restoreLimiters() {
	pl := ss.limits
	ss.limits = nil
	ss.newLimiters()
	for _, l := range []struct {
		lim    *rate.Limiter
		tokens float64
	}{{ss.frames, pl.frames}, {ss.bytesIn, pl.bytesIn}, {ss.strikes, pl.strikes}} {
		if spent := int(math.Ceil(float64(l.lim.Burst()) - l.tokens)); spent > 0 {
			l.lim.AllowN(pl.at, spent)
		}
	}
}

// readFailed answers the client's close, or a frame RFC 6455 forbids
// (close 1002), and says goodbye to a connection that went silent: no
// hello in time, or no pong. Any other read error means the connection is
// gone.
func (ss *session) readFailed(err error) {
	var ce *wsframe.CloseError
	var pe *wsframe.ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		ss.replyClose(ce.Code)
		return
	case errors.As(err, &pe):
		ss.replyClose(wsframe.CloseProtocolError)
		return
	case !errors.As(err, &ne) || !ne.Timeout():
		return
	}
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return // the close timeout ran out: nothing more to say
	}
	b := byeFrame{protocol.CodeNoPong, "no pong in time"}
	if ss.id == "" {
		b = byeFrame{protocol.CodeBadProtocol, "no hello in time"}
	}
	ss.closing = true
	ss.bye = &b
	ss.dropQueueLocked()
	ss.sock.KickLocked()
	done := ss.sock.DoneLocked()
	ss.mu.Unlock()
	ss.srv.byeCode(b.code)
	ss.waitTurn(done) // the reader closes the socket when it returns: not before the bye
}

// replyClose answers the client's close (or a framing fault) with a close
// frame of code, unless this side said bye (its close is the answer):
// nothing more is queued from here, and the reply goes out after what the
// socket holds in part, before the reader closes the socket.
func (ss *session) replyClose(code int) {
	ss.mu.Lock()
	ss.closing = true
	if ss.bye == nil {
		ss.closeReply = code
	}
	ss.sock.KickLocked()
	done := ss.sock.DoneLocked()
	ss.mu.Unlock()
	ss.waitTurn(done)
}

// waitTurn waits, for WriteTimeout at most, for the write turn that done
// (from DoneLocked; nil: none) belongs to.
func (ss *session) waitTurn(done chan struct{}) {
	if done == nil {
		return
	}
	t := time.NewTimer(ss.srv.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// extendRead pushes the read deadline to one ping interval plus the pong
// timeout from now: a live client answers the next ping within it.
func (ss *session) extendRead() {
	if ss.id == "" || ss.isClosing() {
		return // before welcome the hello timeout holds; when closing, the close timeout
	}
	cfg := &ss.srv.cfg
	dl := time.Now().Add(cfg.PingInterval + cfg.PongTimeout)
	ss.readDL.Store(dl.UnixNano())
	_ = ss.sock.SetReadDeadline(dl)
}

func (ss *session) isClosing() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.closing
}

func (ss *session) handleMessage(msg []byte) {
	var err error
	ss.split, err = protocol.Split(ss.split[:0], msg, ss.srv.cfg.MaxFramesPerMessage)
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			ss.close(byeFrame{pe.Code, pe.Msg})
		} else {
			ss.close(byeFrame{protocol.CodeBadProtocol, "undecodable message"})
		}
		return
	}
	ss.srv.cfg.Metrics.MessageIn(len(msg))
	bytesOK := ss.bytesIn.AllowN(time.Now(), len(msg))
	var f protocol.Frame
	for _, fb := range ss.split {
		if ss.isClosing() {
			return
		}
		if ss.id == "" {
			ss.handleHello(fb)
			continue
		}
		ferr := protocol.DecodeFrame(fb, &f)
		ss.srv.cfg.Metrics.FrameIn(f.T)
		if !bytesOK || !ss.frames.Allow() {
			ss.srv.cfg.Metrics.RateLimited()
			if !ss.strikes.Allow() {
				ss.close(byeFrame{protocol.CodeRateLimited, "flooding"})
				return
			}
			ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeRateLimited, "rate limit exceeded"))
			continue
		}
		if ferr != nil {
			ss.replyErr(f.ID, f.R, ferr)
			continue
		}
		ss.handleFrame(&f)
	}
	clear(ss.split)
	if cap(ss.split) > 16 {
		ss.split = nil // a burst of frames does not stay with the connection
	}
}

// handleHello handles the first frame of a connection.
func (ss *session) handleHello(fb []byte) {
	var f protocol.Frame
	if err := protocol.DecodeFrame(fb, &f); err != nil || f.T != protocol.TypeHello {
		ss.close(byeFrame{protocol.CodeBadProtocol, "the first frame must be hello"})
		return
	}
	if f.V != protocol.Version {
		ss.close(byeFrame{protocol.CodeUnsupported, "unsupported protocol version"})
		return
	}
	tok := f.Tok
	if tok == "" {
		tok = ss.httpToken
	}
	ss.httpToken = ""
	ident, err := ss.srv.hookConnect(ss.hookReq, f.C, tok)
	ss.hookReq = nil
	if ident == nil && err == nil {
		ident, err = ss.srv.verify(tok)
	}
	ss.notPending()
	switch {
	case errors.Is(err, errConnectRefused):
		ss.close(byeFrame{protocol.CodeUnauthorized, err.Error()})
		return
	case errors.Is(err, errConnectFailed):
		ss.close(byeFrame{protocol.CodeUnavailable, err.Error()})
		return
	}
	if errors.Is(err, auth.ErrExpired) {
		ss.close(byeFrame{protocol.CodeTokenExpired, "token expired"})
		return
	}
	if err != nil {
		ss.close(byeFrame{protocol.CodeUnauthorized, "invalid token: " + auth.Reason(err)})
		return
	}
	ss.user = ident.User
	ss.ident.Store(ident)
	if rerr := ss.srv.register(ss, f.C, ident.User); rerr != nil {
		ss.close(rerr.bye)
		return
	}
	cfg := &ss.srv.cfg
	w := protocol.Welcome{
		T: protocol.TypeWelcome, V: protocol.Version, C: ss.id, U: ident.User,
		N: cfg.NodeName, Ping: int(cfg.PingInterval / time.Second),
	}
	if !ident.Expires.IsZero() {
		w.Exp = ident.Expires.Unix()
	}
	if w.Ping < 1 {
		w.Ping = 1
	}
	ss.enqueue(protocol.MustEncode(w), durable, "", "")
	ss.mu.Lock()
	ss.lastMsg = time.Now().UnixNano()
	ss.nextPing = time.Now().Add(cfg.PingInterval)
	ss.pingTimer = time.AfterFunc(cfg.PingInterval, ss.onPingTimer)
	ss.armExpiryLocked(ident)
	ss.mu.Unlock()
	ss.extendRead()
}

// armExpiryLocked (re)starts the token expiry timer: the connection ends
// with bye 4 at the token's exp plus the leeway. ss.mu held.
func (ss *session) armExpiryLocked(ident *auth.Identity) {
	if ss.expTimer != nil {
		ss.expTimer.Stop()
		ss.expTimer = nil
	}
	end := ss.srv.expiry(ident)
	if end.IsZero() {
		return
	}
	ss.expTimer = time.AfterFunc(time.Until(end), func() {
		ss.close(byeFrame{protocol.CodeTokenExpired, "token expired"})
	})
}

// Deliver implements room.Subscriber. It runs with the room's lock held.
func (ss *session) Deliver(ev *room.Event) {
	ss.srv.cfg.Metrics.Delivered(ev.Kind.String())
	switch ev.Kind {
	case room.KindMsg, room.KindState:
		ss.enqueueItem(outItem{b: ev.Frame, ev: ev, deflate: ss.deflating(ev)})
	case room.KindPres:
		if ev.Mentions(ss.id) { // a member is not told of its own changes
			if ev = ev.Without(ss.id); ev == nil {
				return
			}
		}
		ss.enqueueItem(outItem{b: ev.Frame, ev: ev, deflate: ss.deflating(ev)})
	case room.KindEph:
		ss.enqueueItem(outItem{b: ev.Frame, eph: dropOK, room: ev.Room, from: ev.Conn, ev: ev, deflate: ss.deflating(ev)})
	case room.KindJoined:
		ss.enqueue(encodeJoined(ev), durable, "", "")
	case room.KindLeft:
		ss.mu.Lock()
		ss.rooms.remove(ev.Room)
		ss.mu.Unlock()
		ss.enqueue(protocol.MustEncode(protocol.Left{T: protocol.TypeLeft, R: ev.Room, Code: ev.Code, Msg: ev.Msg}), durable, "", "")
	}
}

func encodeJoined(ev *room.Event) []byte {
	j := ev.Joined
	log := make([]protocol.Raw, len(j.Log))
	for i, e := range j.Log {
		log[i] = e.Frame
	}
	pres := j.Presence
	if pres == nil {
		pres = []protocol.Member{}
	}
	return protocol.MustEncode(protocol.Joined{
		T: protocol.TypeJoined, ID: j.ID, R: ev.Room, E: j.Epoch, S: j.Seq,
		Log: log, Reset: j.Reset, Pres: pres, St: j.State, Cnt: uint64(j.Count),
	})
}

// close queues bye and closes the connection once it is written.
func (ss *session) close(b byeFrame) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closeLocked(b)
}

// closeLocked starts closing: everything still queued is dropped, the bye is
// written next, then the close frame (ws_write.go); the client then has
// CloseTimeout to answer. ss.mu held.
func (ss *session) closeLocked(b byeFrame) {
	if ss.closing {
		return
	}
	ss.closing = true
	ss.bye = &b
	ss.dropQueueLocked()
	if ss.pingTimer != nil {
		ss.pingTimer.Stop()
	}
	if ss.expTimer != nil {
		ss.expTimer.Stop()
	}
	ss.srv.byeCode(b.code)
	ss.sock.LingerLocked(ss.srv.cfg.ByeLinger)
	ss.sock.KickLocked()
	ss.wakeUpLocked() // the reader waits for the client's close, or the close timeout
}

// abort cuts the connection at once; the reader then cleans up (a parked
// session is given a reader first, and its socket leaves the parker before
// it is closed).
func (ss *session) abort() {
	ss.wakeUp()
	_ = ss.sock.Close()
}

// cleanup runs when the reader ends: the session leaves its rooms (with
// presence grace) and forgets its queue.
func (ss *session) cleanup() {
	ss.mu.Lock()
	ss.closing = true
	ss.mu.Unlock()
	ss.ops.stop() // the ops still queued fail fast; a join done meanwhile is in ss.rooms
	ss.mu.Lock()
	rooms := ss.rooms.names()
	ss.rooms = nil
	ss.dropQueueLocked()
	if ss.pingTimer != nil {
		ss.pingTimer.Stop()
	}
	if ss.expTimer != nil {
		ss.expTimer.Stop()
	}
	ss.mu.Unlock()
	_ = ss.sock.Close()
	for _, name := range rooms {
		ss.srv.cfg.Router.Drop(context.Background(), name, ss)
	}
	ss.srv.unregister(ss)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
