package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/netio"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/server/admission"
)

// Server is one roomd node's edge. Create it with New, mount Handler (or call
// Serve), and stop it with Shutdown.
type Server struct {
	cfg      Config
	origins  originPolicy // cfg.AllowedOrigins, parsed
	upgrader websocket.Upgrader
	mux      *http.ServeMux
	httpSrv  *http.Server

	mu        sync.Mutex
	sessions  map[string]*session // live sessions by connection id
	perUser   map[string]int      // live sessions by user id (named users only)
	pending   int                 // connections upgraded, hello not yet handled
	addrs     addrTable           // per source address (addrlimit.go)
	recent    recentConns         // connection ids that closed lately
	draining  bool
	notReady  bool           // NotReady was called: /readyz says draining
	wg        sync.WaitGroup // one per session
	observers observers      // open SSE streams (sse.go)

	flush     netio.Flushers // write queued frames without blocking
	writers   netio.Writers  // writer goroutines lent to TLS sessions' turns
	park      netio.Parker   // holds idle sessions' sockets
	parkedN   atomic.Int64   // sessions parked now
	parkedSSE atomic.Int64   // raw SSE streams parked now (sse_raw.go)
	parkWakes atomic.Int64   // parked sessions given a goroutine again
	release   netio.Release  // gives memory back once many sessions (and SSE streams) parked
	releases  atomic.Int64
	queued    atomic.Int64 // bytes queued to all connections, in flight included
	slowCuts  atomic.Int64
	tlsFailed atomic.Int64          // TLS handshakes that failed (httplog.go)
	adm       *admission.Controller // publish admission (admission.go)

	shutdownOnce sync.Once
	shutdownErr  error

	// clusterID is the router's cluster identity, for /v1/cluster (nil:
	// the router has none).
	clusterID func() string
}

// PeerHandler is a Router that links cluster nodes: the server mounts its
// handler at GET /v1/peer.
type PeerHandler interface {
	PeerHandler() http.Handler
}

var _ PeerHandler = (*cluster.Cluster)(nil)

// New validates cfg, fills its zero values and returns a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	origins, err := newOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		origins:  origins,
		sessions: make(map[string]*session),
		perUser:  make(map[string]int),
		recent:   recentConns{ids: make(map[string]recentConn)},
	}
	if ci, ok := cfg.Router.(interface{ ClusterID() string }); ok {
		s.clusterID = ci.ClusterID
	}
	if cfg.Ready != nil {
		s.cfg.Router = readyRouter{Router: cfg.Router, ready: cfg.Ready}
	}
	s.adm = s.newAdmission()
	s.flush.Max, s.flush.WG = cfg.Flushers, &s.wg
	s.park.WG = &s.wg
	s.writers.WG = &s.wg
	s.release.Parked = func() int64 { return s.parkedN.Load() + s.parkedSSE.Load() }
	s.release.Released = func() { s.releases.Add(1) }
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  0, // gorilla reuses the session's own reader (idle.go)
		WriteBufferSize: cfg.WriteBufferSize,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{protocol.Subprotocol},
		CheckOrigin:     s.originAllowed,
		Error:           s.upgradeError,
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/ws", s.serveWS)
	s.mux.HandleFunc("GET /v1/info", s.serveInfo)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.routeAPI()
	s.registerSSE()
	if ph, ok := cfg.Router.(PeerHandler); ok {
		s.mux.Handle("GET /v1/peer", ph.PeerHandler()) // links between cluster nodes
	}
	if !cfg.NoWeb {
		s.mux.Handle("GET /", webHandler())
	}
	if p, ok := cfg.Metrics.(*Prometheus); ok {
		p.GaugeFunc("queued_bytes", "Bytes queued to all connections and not yet written.", func() float64 {
			return float64(s.QueuedBytes())
		})
		p.GaugeFunc("parked_connections", "WebSocket connections idle long enough to wait without a reader goroutine.", func() float64 {
			return float64(s.parkedN.Load())
		})
		if cfg.Ready != nil {
			p.GaugeFunc("ready", "1 once the node serves rooms (its cluster has formed), 0 while it forms or joins one.", func() float64 {
				if cfg.Ready() != nil {
					return 0
				}
				return 1
			})
		}
		s.mux.Handle("GET /metrics", p.Handler())
	}
	return s, nil
}

// Router returns the router the server sends room operations to.
func (s *Server) Router() cluster.Router { return s.cfg.Router }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve accepts connections on ln with an http.Server whose timeouts stop a
// client that trickles bytes from holding a socket. It returns
// http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.httpSrv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          s.httpErrorLog(),
	}
	hs := s.httpSrv
	s.mu.Unlock()
	return hs.Serve(ln)
}

// Shutdown stops accepting connections, sends bye with code shutdown to every
// connection, and waits for them to close. It returns ctx.Err() if ctx ends
// first, after cutting the connections still open. It is safe to call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	hs := s.httpSrv
	live := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		live = append(live, ss)
	}
	s.mu.Unlock()
	s.closeObservers(ctx) // before hs.Shutdown, which waits for their handlers

	var httpErr error
	if hs != nil {
		httpErr = hs.Shutdown(ctx)
	}
	for _, ss := range live {
		ss.close(codeShutdownBye) // wakes parked sessions
	}
	s.park.Stop()
	s.writers.Stop() // idle lent writers end; the byes still get theirs
	s.release.Stop()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for _, ss := range s.sessions {
			ss.abort()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
	if httpErr != nil && !errors.Is(httpErr, http.ErrServerClosed) {
		return httpErr
	}
	return nil
}

// QueuedBytes is the number of bytes queued to all connections and not yet
// written, writes in flight included.
func (s *Server) QueuedBytes() int64 { return s.queued.Load() }

// ParkedConnections is the number of WebSocket connections waiting, idle,
// without a reader goroutine (Config.ParkAfter).
func (s *Server) ParkedConnections() int { return int(s.parkedN.Load()) }

// SlowConsumerCuts counts connections closed with slow_consumer.
func (s *Server) SlowConsumerCuts() int64 { return s.slowCuts.Load() }

// Connections is the number of open WebSocket sessions.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) serveInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":    "roomd",
		"version": s.cfg.Version,
		"node":    s.cfg.NodeName,
		"dev":     s.devMode(),
	})
}

// NotReady makes /readyz answer 503 "draining" from now on, while the
// server goes on serving: a node handing its rooms over before it stops
// calls it first, so that load balancers send new clients elsewhere.
func (s *Server) NotReady() {
	s.mu.Lock()
	s.notReady = true
	s.mu.Unlock()
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	draining := s.draining || s.notReady
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if draining {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errRegister tells why a session could not be registered.
type errRegister struct{ bye byeFrame }

// register adds a session under a connection id: the one the client asked
// to reuse when it is free and belonged to the same user, else a fresh one.
// It enforces the node's and the user's connection limits.
func (s *Server) register(ss *session, want, user string) *errRegister {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return &errRegister{codeShutdownBye}
	}
	if s.cfg.MaxConns > 0 && len(s.sessions) >= s.cfg.MaxConns {
		return &errRegister{byeFrame{protocol.CodeTooManyConns, "node connection limit reached"}}
	}
	if user != "" && s.cfg.MaxConnsPerUser > 0 && s.perUser[user] >= s.cfg.MaxConnsPerUser {
		return &errRegister{byeFrame{protocol.CodeTooManyConns, "too many connections for this user"}}
	}
	id := ""
	if want != "" && validConnID(want) && s.sessions[want] == nil && s.recent.take(want, user, time.Now()) {
		id = want
	}
	for id == "" || s.sessions[id] != nil {
		id = newConnID()
	}
	ss.id = id
	s.sessions[id] = ss
	if user != "" {
		s.perUser[user]++
	}
	s.cfg.Metrics.ConnOpened()
	return nil
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.id != "" && s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
		if ss.user != "" {
			if s.perUser[ss.user]--; s.perUser[ss.user] <= 0 {
				delete(s.perUser, ss.user)
			}
		}
		s.cfg.Metrics.ConnClosed()
		s.recent.add(ss.id, ss.user, time.Now().Add(recentConnTTL))
	}
}

// recentConnTTL is how long a closed connection's id may be reused by a
// reconnecting client of the same user. It outlasts any sane presence grace.
const recentConnTTL = 30 * time.Second

// maxRecentConns bounds the remembered connection ids.
const maxRecentConns = 100_000

type recentConn struct {
	user    string
	expires time.Time
}

// recentConns remembers lately closed connection ids, oldest first.
type recentConns struct {
	ids   map[string]recentConn
	order []string
}

func (r *recentConns) add(id, user string, expires time.Time) {
	r.prune(time.Now())
	if len(r.order) >= maxRecentConns {
		delete(r.ids, r.order[0])
		r.order = r.order[1:]
	}
	r.ids[id] = recentConn{user: user, expires: expires}
	r.order = append(r.order, id)
}

func (r *recentConns) take(id, user string, now time.Time) bool {
	rc, ok := r.ids[id]
	if !ok || rc.user != user || now.After(rc.expires) {
		return false
	}
	delete(r.ids, id)
	return true
}

func (r *recentConns) prune(now time.Time) {
	i := 0
	for i < len(r.order) {
		rc, ok := r.ids[r.order[i]]
		if ok && !now.After(rc.expires) {
			break
		}
		if ok {
			delete(r.ids, r.order[i])
		}
		i++
	}
	if i > 0 {
		r.order = append(r.order[:0:0], r.order[i:]...)
	}
}

const connIDLen = 12 // base64url characters of 9 random bytes

func newConnID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validConnID(id string) bool {
	if len(id) != connIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}
