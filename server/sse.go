package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// SSE observers (PROTOCOL.md §3): read-only streams of text/event-stream for
// the browser's EventSource, curl -N and dashboards.
//
//	GET /v1/rooms/{room}/events   one room
//	GET /v1/events?room=a&room=b  several rooms in one stream
//
// Query: h (recent messages in a snapshot), ephemeral=1, since, token.
// The resume point comes from the Last-Event-ID header, else ?since=. In a
// one-room stream it is "{epoch}:{seq}". In a multi-room stream every durable
// event's id carries every room's position, "{room}={epoch}:{seq}" joined by
// "," ("chat:a=K3J..:12,chat:b=Q7M..:4"; room names never hold "=" or ","),
// so the browser's Last-Event-ID resumes each room where it stopped; a room
// missing from it starts with a snapshot. X-Roomd-Epoch and
// X-Roomd-Replay-From tell a resuming client the epoch and the first seq
// replayed ("snapshot" when it got one instead); in a multi-room stream both
// are "{room}={value}" lists in the same form.
//
// Errors a client cannot fix by retrying (bad room, token, permission,
// origin) are HTTP errors with a JSON body, which end an EventSource for
// good. Passing conditions (shutdown, a room that does not answer) are a 200
// stream holding only retry and a bye event, so EventSource reconnects.

// sseJoinTimeout bounds the wait for the rooms' join answers.
const sseJoinTimeout = 10 * time.Second

// sseMaxHistory caps ?h=; the room's history bounds it further.
const sseMaxHistory = 1 << 20

// registerSSE mounts the SSE routes.
func (s *Server) registerSSE() {
	s.mux.HandleFunc("GET /v1/rooms/{room}/events", s.serveRoomEvents)
	s.mux.HandleFunc("GET /v1/events", s.serveEvents)
}

func (s *Server) serveRoomEvents(w http.ResponseWriter, r *http.Request) {
	s.serveSSE(w, r, []string{r.PathValue("room")}, false)
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["room"]
	if len(names) == 0 {
		s.sseError(w, http.StatusBadRequest, protocol.CodeBadRequest, "missing room= parameter")
		return
	}
	if len(names) > s.cfg.MaxRoomsPerConn {
		s.sseError(w, http.StatusBadRequest, protocol.CodeLimit, "at most "+strconv.Itoa(s.cfg.MaxRoomsPerConn)+" rooms per stream")
		return
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			s.sseError(w, http.StatusBadRequest, protocol.CodeBadRequest, "room "+strconv.Quote(n)+" given twice")
			return
		}
		seen[n] = true
	}
	s.serveSSE(w, r, names, true)
}

func (s *Server) sseError(w http.ResponseWriter, status int, code protocol.Code, msg string) {
	s.errorCode(code)
	writeAPIError(w, status, code, msg)
}

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, names []string, multi bool) {
	if !s.cors(w, r) {
		s.sseError(w, http.StatusForbidden, protocol.CodeForbidden, "origin not allowed")
		return
	}
	if !s.admitSSE(w, r) {
		return
	}
	for _, n := range names {
		if !protocol.ValidRoomName(n) {
			s.sseError(w, http.StatusBadRequest, protocol.CodeInvalidRoom, "invalid room name")
			return
		}
	}
	// The token may be in the URL: neither it nor the URL is ever logged.
	ident, err := s.verify(auth.TokenFromRequest(r, true))
	if err != nil {
		s.sseError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "missing or invalid token")
		return
	}
	for _, n := range names {
		if !ident.Can(n, auth.PermObserve) {
			s.authFailed("forbidden")
			s.sseError(w, http.StatusForbidden, protocol.CodeForbidden, "token lacks \"observe\" for room "+strconv.Quote(n))
			return
		}
	}
	q := r.URL.Query()
	hist := 0
	if v := q.Get("h"); v != "" {
		hist, err = strconv.Atoi(v)
		if err != nil || hist < 0 {
			s.sseError(w, http.StatusBadRequest, protocol.CodeBadRequest, "h: want a count of messages")
			return
		}
		hist = min(hist, sseMaxHistory)
	}
	// A Last-Event-ID the server cannot read (another server's, another
	// stream's) is forgotten: the client gets a snapshot. A bad ?since= is the
	// caller's mistake.
	cursor, fromHeader := r.Header.Get("Last-Event-ID"), true
	if cursor == "" {
		cursor, fromHeader = q.Get("since"), false
	}
	since, ok := parseCursor(cursor, names, multi)
	if !ok && !fromHeader {
		s.sseError(w, http.StatusBadRequest, protocol.CodeBadRequest, "since: want {epoch}:{seq}")
		return
	}

	o := &sseObserver{
		srv:   s,
		id:    newConnID(),
		user:  ident.User,
		eph:   q.Get("ephemeral") == "1" || q.Get("ephemeral") == "true",
		multi: multi,
		hist:  hist,
		wake:  make(chan struct{}, 1),
		rc:    http.NewResponseController(w),
	}
	for _, n := range names {
		o.rooms = append(o.rooms, &sseRoom{name: n, since: since[n]})
	}
	startStream(w, r)
	if r.Method == http.MethodHead {
		return
	}
	if !s.addObserver(o) {
		o.close(codeShutdownBye, time.Time{})
		o.stream(r.Context(), w)
		return
	}
	if end := s.expiry(ident); !end.IsZero() {
		// As a WebSocket session: bye 4 at the token's exp plus the leeway.
		o.expTimer = time.AfterFunc(time.Until(end), func() {
			o.close(byeFrame{protocol.CodeTokenExpired, "token expired"}, time.Time{})
		})
	}
	if !o.run(r.Context(), w, r) {
		s.removeObserver(o)
	} // else the stream lives on, parked: endDetached removes it
}

// startStream sets the headers of an event stream.
func startStream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		// A stream's connection is not reused: it ends with its stream.
		h.Set("Connection", "close")
	}
}

// run joins the rooms, waits for their answers, and streams until the end.
// When it returns, the observer has left every room it joined.
//
// It reports detached when the stream went on without the handler (a raw
// stream parked: sse_raw.go); the observer then leaves its rooms when the
// stream ends (endDetached).
func (o *sseObserver) run(ctx context.Context, w http.ResponseWriter, r *http.Request) (detached bool) {
	var joined []string
	defer func() {
		if detached {
			return
		}
		o.mu.Lock()
		o.ended = true
		clear(o.queue)
		o.queue = nil
		o.mu.Unlock()
		o.leave(joined)
	}()
	for _, rm := range o.rooms {
		err := o.srv.cfg.Router.Join(ctx, room.JoinRequest{
			Room: rm.name, Conn: o.id, User: o.user, Since: rm.since, History: o.hist, Observer: true,
		}, o)
		if err != nil {
			o.joinFailed(ctx, w, err)
			return false
		}
		joined = append(joined, rm.name)
	}
	if !o.awaitJoined(ctx) {
		return false
	}
	o.mu.Lock()
	h := w.Header()
	if o.bye == nil {
		if o.multi {
			var ep, from []string
			for _, rm := range o.rooms {
				ep = append(ep, rm.name+"="+rm.epoch)
				from = append(from, rm.name+"="+rm.start)
			}
			h.Set("X-Roomd-Epoch", strings.Join(ep, ","))
			h.Set("X-Roomd-Replay-From", strings.Join(from, ","))
		} else {
			h.Set("X-Roomd-Epoch", o.rooms[0].epoch)
			h.Set("X-Roomd-Replay-From", o.rooms[0].start)
		}
	}
	for _, rm := range o.rooms {
		if rm.since != nil {
			rm.posEpoch, rm.posSeq, rm.hasPos = rm.since.E, rm.since.S, true
		}
	}
	o.mu.Unlock()
	taken, detached := o.streamRaw(ctx, w, r)
	if !taken {
		o.stream(ctx, w)
	}
	return detached
}

// awaitJoined waits until every room answered, or the stream was cut. It
// reports false when nothing more should be written (client gone).
func (o *sseObserver) awaitJoined(ctx context.Context) bool {
	timer := time.NewTimer(sseJoinTimeout)
	defer timer.Stop()
	for {
		o.mu.Lock()
		done := o.joined == len(o.rooms) || o.bye != nil
		o.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-o.wake:
		case <-timer.C:
			o.close(byeFrame{protocol.CodeUnavailable, "the room did not answer in time"}, time.Time{})
			return true
		}
	}
}

// joinFailed answers a refused join: a passing condition as a stream that
// says bye (EventSource retries), anything else as an HTTP error.
func (o *sseObserver) joinFailed(ctx context.Context, w http.ResponseWriter, err error) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		o.srv.cfg.Logger.Error("sse join failed", slog.String(logKeyConn, o.id), slog.Any(logKeyErr, err))
		pe = protocol.NewError(protocol.CodeInternal, "internal error")
	}
	if pe.Code < protocol.CodeBadRequest {
		o.close(byeFrame{pe.Code, pe.Msg}, time.Time{})
		o.stream(ctx, w)
		return
	}
	for _, k := range []string{"Cache-Control", "X-Accel-Buffering", "Connection"} {
		w.Header().Del(k)
	}
	o.srv.sseError(w, 0, pe.Code, pe.Msg)
}

// roomNames returns the names of the stream's rooms.
func (o *sseObserver) roomNames() []string {
	names := make([]string, len(o.rooms))
	for i, rm := range o.rooms {
		names[i] = rm.name
	}
	return names
}

// leave takes the observer out of the rooms it joined.
func (o *sseObserver) leave(joined []string) {
	for _, n := range joined {
		o.srv.cfg.Router.Leave(context.Background(), n, o)
	}
}

// parseCursor reads a resume point. One room: "{epoch}:{seq}". Several:
// "{room}={epoch}:{seq}" joined by ","; rooms not asked for are ignored.
// An empty cursor is no resume point; ok is false when it cannot be read.
func parseCursor(c string, names []string, multi bool) (map[string]*protocol.Since, bool) {
	if c == "" {
		return nil, true
	}
	if !multi {
		sp, ok := parsePos(c)
		if !ok {
			return nil, false
		}
		return map[string]*protocol.Since{names[0]: sp}, true
	}
	out := make(map[string]*protocol.Since)
	for _, part := range strings.Split(c, ",") {
		name, pos, found := strings.Cut(part, "=")
		if !found {
			return nil, false
		}
		sp, ok := parsePos(pos)
		if !ok {
			return nil, false
		}
		out[name] = sp
	}
	return out, true
}

// parsePos reads "{epoch}:{seq}". The epoch is opaque; the seq follows the
// last ":".
func parsePos(s string) (*protocol.Since, bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return nil, false
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return nil, false
	}
	return &protocol.Since{E: s[:i], S: seq}, true
}

// observers are a Server's open SSE streams, so that Shutdown can say bye
// to them. Lock order: Server.mu, then observers.mu, then sseObserver.mu
// (docs/LOCKS.md).
type observers struct {
	mu  sync.Mutex
	set map[*sseObserver]struct{}
}

// addObserver registers o and counts it in s.wg, unless s is draining.
func (s *Server) addObserver(o *sseObserver) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.wg.Add(1)
	s.observers.mu.Lock()
	if s.observers.set == nil {
		s.observers.set = make(map[*sseObserver]struct{})
	}
	s.observers.set[o] = struct{}{}
	s.observers.mu.Unlock()
	s.cfg.Metrics.ObserverOpened()
	return true
}

func (s *Server) removeObserver(o *sseObserver) {
	if o.expTimer != nil {
		o.expTimer.Stop()
	}
	s.observers.mu.Lock()
	delete(s.observers.set, o)
	s.observers.mu.Unlock()
	s.cfg.Metrics.ObserverClosed()
	s.wg.Done()
}

// closeObservers ends every SSE stream with bye shutdown; writes stop at
// ctx's deadline, if it has one. It does not wait: the streams are in s.wg.
func (s *Server) closeObservers(ctx context.Context) {
	deadline, _ := ctx.Deadline()
	s.observers.mu.Lock()
	live := make([]*sseObserver, 0, len(s.observers.set))
	for o := range s.observers.set {
		live = append(live, o)
	}
	s.observers.mu.Unlock()
	for _, o := range live {
		o.close(codeShutdownBye, deadline)
	}
}

// Observers is the number of open SSE streams.
func (s *Server) Observers() int {
	s.observers.mu.Lock()
	defer s.observers.mu.Unlock()
	return len(s.observers.set)
}
