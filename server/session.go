package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// session is one WebSocket connection. Its reader runs in the HTTP handler's
// goroutine; its writer runs only while frames are queued (outbound.go).
//
// Lock order: a room's lock, then s.mu (rooms call Deliver with theirs held).
// The session never calls into a room while holding s.mu.
type session struct {
	srv  *Server
	conn *websocket.Conn
	log  *slog.Logger

	// Set before the session is shared, then read-only.
	id    string
	user  string
	ident atomic.Pointer[auth.Identity]

	lastWrite   atomic.Int64 // unix ns of the last message written
	deadlineSet time.Time    // writer-owned: when the write deadline was last moved

	mu         sync.Mutex
	queue      []outItem
	qbytes     int
	writing    bool
	writerDone chan struct{} // closed when the running writer exits
	pingDue    bool
	closing    bool
	bye        *byeFrame
	ephDropped int
	rooms      map[string]struct{} // joined rooms
	pingTimer  *time.Timer
	expTimer   *time.Timer

	// Reader-owned.
	br        *bufio.Reader   // gorilla's read buffer (see idle.go)
	raw       syscall.RawConn // the plain TCP socket; nil for TLS
	pending   bool            // counted in Server.pending
	httpToken string          // token from the upgrade request, if any
	frames    *rate.Limiter
	bytesIn   *rate.Limiter
	strikes   *rate.Limiter
	split     [][]byte
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
	s.mu.Lock()
	draining := s.draining
	full := s.pending >= s.cfg.MaxPending
	if !draining && !full {
		s.wg.Add(1)
		s.pending++
	}
	s.mu.Unlock()
	switch {
	case draining:
		writeAPIError(w, http.StatusServiceUnavailable, protocol.CodeShutdown, "server shutting down")
		return
	case full:
		writeAPIError(w, http.StatusServiceUnavailable, protocol.CodeOverloaded, "too many connections waiting for hello")
		return
	}
	ss := &session{srv: s, log: s.cfg.Logger, pending: true, httpToken: auth.TokenFromRequest(r, false)}
	own := &ownReader{ResponseWriter: w, size: s.cfg.ReadBufferSize}
	conn, err := s.upgrader.Upgrade(own, r, nil)
	if err != nil {
		ss.notPending()
		s.wg.Done()
		return // the upgrader answered
	}
	ss.conn = conn
	ss.br = own.br
	ss.raw = rawConn(conn.NetConn())
	// The session reads in a goroutine of its own and the handler returns,
	// so that net/http lets go of the request, its buffers and the deep
	// stack of its connection goroutine: an idle connection keeps only
	// what the session needs.
	go func() {
		defer s.wg.Done()
		defer ss.notPending()
		ss.run()
	}()
}

// notPending takes the session off the count of connections without hello.
func (ss *session) notPending() {
	if !ss.pending {
		return
	}
	ss.pending = false
	ss.srv.mu.Lock()
	ss.srv.pending--
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
	cfg := &ss.srv.cfg
	ss.conn.SetReadLimit(0) // enforced here, with our own code
	ss.conn.SetPongHandler(func(string) error { ss.extendRead(); return nil })
	ss.conn.SetPingHandler(func(data string) error {
		ss.extendRead()
		err := ss.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(cfg.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
		return nil
	})
	_ = ss.conn.SetReadDeadline(time.Now().Add(cfg.HelloTimeout))
	ss.frames = rate.NewLimiter(rate.Limit(cfg.FrameRate), cfg.FrameBurst)
	ss.bytesIn = rate.NewLimiter(rate.Limit(cfg.ByteRate), max(cfg.ByteRate, cfg.MaxMessageBytes))
	ss.strikes = rate.NewLimiter(rate.Limit(float64(cfg.FloodStrikes)/10), cfg.FloodStrikes)

	defer ss.cleanup()
	for {
		if err := ss.idleRead(); err != nil {
			ss.readFailed(err)
			return
		}
		mt, rd, err := ss.conn.NextReader()
		if err != nil {
			ss.readFailed(err)
			return
		}
		if ss.isClosing() {
			continue // drain until the client's close or the close timeout
		}
		if mt != websocket.BinaryMessage {
			ss.close(byeFrame{protocol.CodeBadProtocol, "text messages are not allowed"})
			continue
		}
		// A buffer from the pool for each message, not one per connection:
		// idle connections hold none.
		buf := msgBufPool.Get().(*bytes.Buffer)
		buf.Reset()
		n, err := buf.ReadFrom(limitReader(rd, int64(cfg.MaxMessageBytes)+1))
		if err != nil {
			putMsgBuf(buf, cfg.MaxMessageBytes)
			return
		}
		if n > int64(cfg.MaxMessageBytes) {
			putMsgBuf(buf, cfg.MaxMessageBytes)
			ss.close(byeFrame{protocol.CodeTooLarge, "message over the size limit"})
			continue
		}
		ss.extendRead()
		ss.handleMessage(buf.Bytes())
		putMsgBuf(buf, cfg.MaxMessageBytes)
	}
}

// readFailed says goodbye to a connection that went silent: no hello in
// time, or no pong. Any other read error means the connection is gone.
func (ss *session) readFailed(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
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
	writing, done := ss.writing, ss.writerDone
	ss.mu.Unlock()
	ss.srv.byeCode(b.code)
	if !writing {
		ss.finishClose(b)
		return
	}
	select { // the reader closes the socket when it returns: not before the bye
	case <-done:
	case <-time.After(ss.srv.cfg.WriteTimeout):
	}
}

// extendRead pushes the read deadline to one ping interval plus the pong
// timeout from now: a live client answers the next ping within it.
func (ss *session) extendRead() {
	if ss.id == "" || ss.isClosing() {
		return // before welcome the hello timeout holds; when closing, the close timeout
	}
	cfg := &ss.srv.cfg
	_ = ss.conn.SetReadDeadline(time.Now().Add(cfg.PingInterval + cfg.PongTimeout))
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
	ident, err := ss.srv.verify(tok)
	ss.notPending()
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
	ss.pingTimer = time.AfterFunc(cfg.PingInterval, ss.onPingTimer)
	ss.armExpiryLocked(ident)
	ss.mu.Unlock()
	ss.extendRead()
}

// armExpiryLocked (re)starts the token expiry timer. ss.mu held.
func (ss *session) armExpiryLocked(ident *auth.Identity) {
	if ss.expTimer != nil {
		ss.expTimer.Stop()
		ss.expTimer = nil
	}
	if ident.Expires.IsZero() {
		return
	}
	ss.expTimer = time.AfterFunc(time.Until(ident.Expires), func() {
		ss.close(byeFrame{protocol.CodeTokenExpired, "token expired"})
	})
}

func (ss *session) handleFrame(f *protocol.Frame) {
	ctx := context.Background()
	switch f.T {
	case protocol.TypeJoin:
		ss.opJoin(ctx, f)
	case protocol.TypeLeave:
		ss.opLeave(ctx, f)
	case protocol.TypePub:
		ss.opPub(ctx, f)
	case protocol.TypePres:
		ss.opPres(ctx, f)
	case protocol.TypeSet:
		ss.opSet(ctx, f)
	case protocol.TypeAuth:
		ss.opAuth(f)
	case protocol.TypeHello:
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeBadRequest, "hello was already received"))
	default:
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeUnknownType, "unknown frame type %q", f.T))
	}
}

// checkRoom validates the room of an op and the permission it needs.
func (ss *session) checkRoom(f *protocol.Frame, perm auth.Perm, mustBeJoined bool) bool {
	if f.R == "" {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeBadRequest, "missing key \"r\""))
		return false
	}
	if !protocol.ValidRoomName(f.R) {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeInvalidRoom, "invalid room name"))
		return false
	}
	if !ss.ident.Load().Can(f.R, perm) {
		ss.srv.authFailed("forbidden")
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeForbidden, "token lacks %q for this room", perm.String()))
		return false
	}
	if mustBeJoined && !ss.joined(f.R) {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeNotJoined, "join the room first"))
		return false
	}
	return true
}

func (ss *session) joined(name string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.rooms[name]
	return ok
}

func (ss *session) opJoin(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermJoin, false) {
		return
	}
	ss.mu.Lock()
	_, already := ss.rooms[f.R]
	full := len(ss.rooms) >= ss.srv.cfg.MaxRoomsPerConn
	if !already && !full {
		if ss.rooms == nil {
			ss.rooms = make(map[string]struct{})
		}
		ss.rooms[f.R] = struct{}{} // claimed now; a KindLeft may remove it
	}
	ss.mu.Unlock()
	switch {
	case already:
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeAlreadyJoined, "already joined"))
		return
	case full:
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeLimit, "at most %d rooms per connection", ss.srv.cfg.MaxRoomsPerConn))
		return
	}
	if f.H < 0 {
		f.H = 0
	}
	ident := ss.ident.Load()
	err := ss.srv.cfg.Router.Join(ctx, room.JoinRequest{
		ID: f.ID, Room: f.R, Conn: ss.id, User: ss.user, Info: protocol.Raw(ident.Info),
		Presence: f.P, Since: f.Since, History: int(min(f.H, 1<<20)),
	}, ss)
	if err != nil {
		ss.mu.Lock()
		delete(ss.rooms, f.R)
		ss.mu.Unlock()
		ss.replyErr(f.ID, f.R, err)
	}
}

func (ss *session) opLeave(ctx context.Context, f *protocol.Frame) {
	if f.R == "" || !protocol.ValidRoomName(f.R) {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeInvalidRoom, "invalid room name"))
		return
	}
	ss.mu.Lock()
	_, ok := ss.rooms[f.R]
	delete(ss.rooms, f.R)
	ss.mu.Unlock()
	if !ok {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeNotJoined, "not joined"))
		return
	}
	ss.srv.cfg.Router.Leave(ctx, f.R, ss)
	ss.replyOK(f.ID, 0)
}

func (ss *session) opPub(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermPub, true) {
		return
	}
	if len(f.Key) > protocol.MaxIdempotencyKey {
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeTooLarge, "idempotency key over %d bytes", protocol.MaxIdempotencyKey))
		return
	}
	if f.D == nil {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeBadRequest, "missing key \"d\""))
		return
	}
	seq, err := ss.srv.cfg.Router.Publish(ctx, room.PublishRequest{
		Room: f.R, Conn: ss.id, User: ss.user, Data: f.D, Ephemeral: f.Eph, Key: f.Key,
	})
	if err != nil {
		if !f.Eph || f.ID != 0 {
			ss.replyErr(f.ID, f.R, err)
		}
		return
	}
	if !f.Eph {
		ss.replyOK(f.ID, seq)
	}
}

func (ss *session) opPres(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermPres, true) {
		return
	}
	if err := ss.srv.cfg.Router.UpdatePresence(ctx, room.PresenceRequest{Room: f.R, Conn: ss.id, Data: f.D}); err != nil {
		ss.replyErr(f.ID, f.R, err)
		return
	}
	ss.replyOK(f.ID, 0)
}

func (ss *session) opSet(ctx context.Context, f *protocol.Frame) {
	if !ss.checkRoom(f, auth.PermState, true) {
		return
	}
	if f.K == "" {
		ss.replyErr(f.ID, f.R, protocol.NewError(protocol.CodeBadRequest, "missing key \"k\""))
		return
	}
	if len(f.K) > protocol.MaxStateKey {
		ss.replyErr(f.ID, f.R, protocol.Errorf(protocol.CodeTooLarge, "state key over %d bytes", protocol.MaxStateKey))
		return
	}
	seq, err := ss.srv.cfg.Router.SetState(ctx, room.SetRequest{
		Room: f.R, Conn: ss.id, User: ss.user, Key: f.K, Value: f.D,
	})
	if err != nil {
		ss.replyErr(f.ID, f.R, err)
		return
	}
	ss.replyOK(f.ID, seq)
}

// opAuth swaps the connection's token for a fresh one of the same user.
func (ss *session) opAuth(f *protocol.Frame) {
	ident, err := ss.srv.verify(f.Tok)
	if err != nil || ident.User != ss.user {
		ss.replyErr(f.ID, "", protocol.NewError(protocol.CodeUnauthorized, "token refused; the current one stays in force"))
		return
	}
	ss.ident.Store(ident)
	ss.mu.Lock()
	if !ss.closing {
		ss.armExpiryLocked(ident)
	}
	ss.mu.Unlock()
	ss.replyOK(f.ID, 0)
}

func (ss *session) replyOK(id, seq uint64) {
	if id == 0 {
		return
	}
	ss.enqueue(protocol.MustEncode(protocol.OK{T: protocol.TypeOK, ID: id, S: seq}), durable, "", "")
}

func (ss *session) replyErr(id uint64, roomName string, err error) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		ss.log.Error("room operation failed", slog.String(logKeyConn, ss.id), slog.Any(logKeyErr, err))
		pe = protocol.NewError(protocol.CodeInternal, "internal error")
	}
	ss.srv.errorCode(pe.Code)
	ss.enqueue(protocol.MustEncode(protocol.Err{T: protocol.TypeErr, ID: id, R: roomName, Code: pe.Code, Msg: pe.Msg}), durable, "", "")
}

// Deliver implements room.Subscriber. It runs with the room's lock held.
func (ss *session) Deliver(ev *room.Event) {
	ss.srv.cfg.Metrics.Delivered(ev.Kind.String())
	switch ev.Kind {
	case room.KindMsg, room.KindState:
		ss.enqueueAt(ev.Frame, durable, "", "", ev.Created)
	case room.KindPres:
		ss.enqueue(ev.Frame, durable, "", "")
	case room.KindEph:
		ss.enqueue(ev.Frame, dropOK, ev.Room, ev.Conn)
	case room.KindJoined:
		ss.enqueue(encodeJoined(ev), durable, "", "")
	case room.KindLeft:
		ss.mu.Lock()
		delete(ss.rooms, ev.Room)
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
		Log: log, Reset: j.Reset, Pres: pres, St: j.State,
	})
}

// close queues bye and closes the connection once it is written.
func (ss *session) close(b byeFrame) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closeLocked(b, false)
}

// closeLocked starts closing: everything still queued is dropped, the bye is
// written next, then the close frame. ss.mu held.
func (ss *session) closeLocked(b byeFrame, _ bool) {
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
	ss.kickWriterLocked()
}

// finishClose writes bye and the close frame, then gives the client
// CloseTimeout to answer before the reader gives up.
func (ss *session) finishClose(b byeFrame) {
	cfg := &ss.srv.cfg
	deadline := time.Now().Add(cfg.WriteTimeout)
	frame := protocol.MustEncode(protocol.Bye{T: protocol.TypeBye, Code: b.code, Msg: b.msg})
	_ = ss.conn.SetWriteDeadline(deadline)
	if err := ss.conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		ss.abort()
		return
	}
	msg := websocket.FormatCloseMessage(b.code.CloseCode(), truncate(b.msg, 120))
	if err := ss.conn.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
		ss.abort()
		return
	}
	_ = ss.conn.SetReadDeadline(time.Now().Add(cfg.CloseTimeout))
}

// abort cuts the connection at once; the reader then cleans up.
func (ss *session) abort() { _ = ss.conn.NetConn().Close() }

// cleanup runs when the reader ends: the session leaves its rooms (with
// presence grace) and forgets its queue.
func (ss *session) cleanup() {
	ss.mu.Lock()
	ss.closing = true
	rooms := ss.rooms
	ss.rooms = nil
	ss.dropQueueLocked()
	if ss.pingTimer != nil {
		ss.pingTimer.Stop()
	}
	if ss.expTimer != nil {
		ss.expTimer.Stop()
	}
	ss.mu.Unlock()
	_ = ss.conn.NetConn().Close()
	for name := range rooms {
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
