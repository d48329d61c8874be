package roomd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
	"github.com/roomd/roomd/server/auth"
)

// Node is a running roomd node: its rooms, its cluster layer (a cluster of
// one unless configured) and its HTTP handler (WebSocket, SSE, the HTTP
// API, /healthz, /readyz, /metrics when on, and the demo pages when web is
// on). Serve it with ServeHTTP (or Serve) and stop it with Close.
type Node struct {
	cfg      *Settings
	log      *slog.Logger
	name     string
	verifier *auth.Verifier
	prom     *server.Prometheus // nil: metrics off
	hooks    *hooks.Hooks       // nil: none
	rooms    *room.Manager
	cl       *cluster.Cluster
	srv      *server.Server

	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	serveDied bool // Serve failed: Close does not wait drain_delay
}

var _ http.Handler = (*Node)(nil)

// New builds a node from cfg and starts it: a clustered node joins its
// cluster in the background, and /readyz answers 503 until it serves
// rooms. Nothing listens: serve the node's handler. New returns an error
// for invalid settings, a token key file that does not load, or a cluster
// layer that cannot start (a gossip port taken).
func New(cfg Config) (*Node, error) {
	s := cfg.Settings
	if s == nil {
		var err error
		if s, err = ParseSettings(nil); err != nil {
			return nil, err
		}
	}
	if s.Web == nil || s.Metrics == nil {
		return nil, ErrSettings
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if cfg.Addr != nil {
		// The handler's address stands for listen, which names the host
		// peers reach it on (when it names one).
		own := *s
		own.Listen = cfg.Addr.String()
		s = &own
	}
	n := &Node{cfg: s, log: cfg.Logger}
	if n.log == nil {
		n.log = slog.Default()
	}
	var err error
	if n.verifier, err = auth.NewVerifier(s.AuthConfig()); err != nil {
		return nil, err
	}
	if *s.Metrics {
		n.prom = server.NewPrometheus()
	}
	if n.hooks, err = n.newHooks(cfg.Hooks); err != nil {
		return nil, err
	}
	rc := s.RoomConfig()
	if n.prom != nil {
		rc.OnLimit = n.prom.LimitRefused
	}
	if n.rooms, err = room.New(rc); err != nil {
		n.closeHooks()
		return nil, err
	}
	n.name = s.ResolvedNodeName()
	cc, err := n.clusterConfig(cfg.Addr)
	if err == nil {
		n.cl, err = cluster.New(cc)
	}
	if err != nil {
		n.closeHooks()
		n.rooms.Close()
		return nil, err
	}
	if n.srv, err = server.New(n.serverConfig(cfg.Version)); err != nil {
		n.stop(context.Background())
		return nil, err
	}
	n.logStart()
	n.logCluster(cc)
	return n, nil
}

// newHooks builds the node's hooks: in-process functions when given, else
// the HTTP hooks of the settings; nil when none is on.
func (n *Node) newHooks(h *Hooks) (*hooks.Hooks, error) {
	var m hooks.Metrics
	if n.prom != nil {
		m = n.prom
	}
	if h == nil {
		return n.cfg.NewHooks(n.log, n.prom)
	}
	base, _ := n.cfg.HookConfig(n.log, m)
	own := *h // the node's own copy, safe from later changes
	return hooks.New(own.config(base))
}

func (n *Node) clusterConfig(addr net.Addr) (cluster.Config, error) {
	s := n.cfg
	if s.Clustered() && addr == nil && s.Cluster.AdvertiseHTTP == "" {
		return cluster.Config{}, ErrNoAddr
	}
	cc, err := s.ClusterConfig(n.name, n.rooms, addr, n.log)
	if n.prom != nil {
		cc.Metrics = n.prom
	}
	cc.Hooks = n.hooks
	return cc, err
}

func (n *Node) serverConfig(version string) server.Config {
	sc := n.cfg.ServerConfig()
	sc.Router = n.cl
	sc.Ready = n.cl.Ready
	sc.Auth = n.verifier
	if len(n.cfg.APIKeys) > 0 {
		sc.APIKeys = auth.NewAPIKeys(n.cfg.APIKeys)
	}
	if n.prom != nil {
		sc.Metrics = n.prom
	}
	sc.Hooks = n.hooks
	sc.Logger = n.log
	sc.NodeName = n.name
	sc.Version = version
	return sc
}

// ServeHTTP serves the node's routes.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.srv.Handler().ServeHTTP(w, r) }

// Serve accepts connections on ln with an http.Server of the node's own,
// whose timeouts stop a client that trickles bytes from holding a socket
// (what the binary does). It returns http.ErrServerClosed after Close.
func (n *Node) Serve(ln net.Listener) error {
	err := n.srv.Serve(ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		n.mu.Lock()
		n.serveDied = true
		n.mu.Unlock()
	}
	return err
}

// Name is the node's name in its cluster: node_name, else the host name
// and a random suffix.
func (n *Node) Name() string { return n.name }

// Members lists the cluster's serving members by name, this node's
// included: one name for a cluster of one.
func (n *Node) Members() []string { return n.cl.Placement().Members() }

// GossipAddr is the host:port this node gossips on, for other nodes'
// cluster.join; "" for a cluster of one.
func (n *Node) GossipAddr() string { return n.cl.GossipAddr() }

// Ready returns nil once the node serves rooms (its cluster has formed),
// else why not; /readyz answers from it.
func (n *Node) Ready() error { return n.cl.Ready() }

// Registry is the Prometheus registry of the node's metrics (also served
// at the handler's /metrics); nil when metrics are off (metrics: false).
// The node keeps its metrics (roomd_*, and the Go runtime's and the
// process's) on a registry of its own, so that they never clash with the
// program's: serve the handler's /metrics, or gather this registry with a
// registry of the program's that holds no Go or process collector
// (prometheus.Gatherers).
func (n *Node) Registry() *prometheus.Registry {
	if n.prom == nil {
		return nil
	}
	return n.prom.Registry()
}

// ReloadKeys re-reads the token key files (auth.public_key_files,
// auth.jwks_file), as SIGHUP does for the binary. What fails to load
// leaves the old keys in force, and is returned.
func (n *Node) ReloadKeys() error { return n.verifier.Reload() }

// Close stops the node as SIGTERM stops the binary: /readyz answers 503
// draining for drain_delay while the node serves on; a cluster member then
// hands its rooms to the other members, for up to shutdown_grace; every
// connection gets bye with code shutdown and up to shutdown_grace to
// close; the member leaves the cluster (up to 10 s, even past ctx), the
// hooks' delivery stops and the rooms end. ctx bounds every other step;
// when it ends first, what is left is cut short and Close returns
// ctx.Err(). Close stops what New started and waits for it; it is safe to
// call twice.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	n.mu.Lock()
	died := n.serveDied
	n.mu.Unlock()
	if !died {
		n.delay(ctx)
	}
	grace := time.Duration(n.cfg.ShutdownGrace)
	n.drain(ctx, grace)
	n.log.Info("shutting down", slog.String(logKeyGrace, config.FormatDuration(grace)))
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var errs []error
	if err := n.srv.Shutdown(sctx); err != nil {
		n.log.Warn("shutdown grace ran out; the remaining connections were cut", slog.Any(logKeyErr, err))
		errs = append(errs, err)
	}
	errs = append(errs, n.stop(sctx))
	n.log.Info("stopped")
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// delay makes /readyz answer 503 draining for drain_delay (or until ctx
// ends) while the node goes on serving, so that a load balancer polling it
// takes the node out before it stops.
func (n *Node) delay(ctx context.Context) {
	d := time.Duration(n.cfg.DrainDelay)
	if d <= 0 {
		return
	}
	n.srv.NotReady()
	n.log.Info("draining: /readyz answers 503 until the listener closes", slog.String(logKeyDelay, config.FormatDuration(d)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// drain hands this node's rooms over to the other members, for up to
// grace: a member of a cluster leaves gracefully before its clients are
// told to reconnect elsewhere. A cluster of one has nothing to hand over.
func (n *Node) drain(ctx context.Context, grace time.Duration) {
	if !n.cfg.Clustered() {
		return
	}
	others := 0
	for _, m := range n.cl.Placement().Members() {
		if m != n.cl.Self() {
			others++
		}
	}
	if others == 0 {
		// Nobody serves to take the rooms: they end with the node.
		n.log.Info("draining skipped: no other member serves")
		return
	}
	n.log.Info("draining: handing this node's rooms to the other members", slog.String(logKeyGrace, config.FormatDuration(grace)))
	n.srv.NotReady()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := n.cl.Drain(ctx); err != nil {
		n.log.Warn("drain did not finish; the groups this node still leads elect other leaders, as after a crash",
			slog.Any(logKeyErr, err), slog.Duration(logKeyTook, time.Since(start)))
		return
	}
	n.log.Info("rooms handed over", slog.Duration(logKeyTook, time.Since(start)))
}

// stop stops the cluster layer (a member leaves the cluster), then the
// hooks' delivery (events still queued are delivered again by their rooms'
// next owner), then the rooms. Leaving gets 10 s even when ctx has ended:
// what the cluster layer started must stop.
func (n *Node) stop(ctx context.Context) error {
	if n.cfg.Clustered() {
		n.log.Info("leaving the cluster")
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	if cerr := n.cl.Shutdown(cctx); cerr != nil {
		n.log.Warn("cluster shutdown", slog.Any(logKeyErr, cerr))
		err = cerr
	}
	if herr := n.hooks.Close(ctx); herr != nil {
		n.log.Warn("hooks shutdown", slog.Any(logKeyErr, herr))
		err = errors.Join(err, herr)
	}
	n.rooms.Close()
	return err
}

func (n *Node) closeHooks() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.hooks.Close(ctx)
}
