package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
	"github.com/roomd/roomd/server/auth"
)

// Log keys of this command, one spelling each. Secrets and tokens are never
// logged: not their values, not their lengths.
const (
	logKeyAddr     = "addr"
	logKeyTLS      = "tls"
	logKeyNode     = "node"
	logKeyVersion  = "version"
	logKeyErr      = "err"
	logKeyGrace    = "grace"
	logKeyDelay    = "delay"
	logKeyIndex    = "index"
	logKeyAlgs     = "algorithms"
	logKeySubject  = "subject"
	logKeyNotAfter = "not_after"
	logKeyCert     = "cert"
)

// runServe is `roomd serve` (and `roomd` without a subcommand).
func runServe(args []string, stdout, stderr io.Writer) error {
	var given []flagValue
	fs := flag.NewFlagSet("roomd serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	settingFlags(fs, &given)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			serveUsage(stdout)
			return nil
		}
		return usageError("serve", err)
	}
	if fs.NArg() > 0 {
		return usageError("serve", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	cfg, err := loadConfig(sources{file: configFile(given, osEnv), env: osEnv, flags: given})
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	// What net/http logs through the log package (TLS handshake errors)
	// goes through the same handler.
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, cfg, logger, hup)
}

func serveUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: roomd [serve] [flags]

Runs a roomd node until SIGINT or SIGTERM; SIGHUP reloads the TLS certificate
and the token keys. Each setting is taken from, in rising precedence: its
default, the --config file, its ROOMD_* variable, its flag. A list flag may be
repeated; its variable takes a comma-separated list. See docs/OPERATIONS.md.

`)
	printSettings(w)
}

// serve runs a node with cfg until ctx ends, then shuts it down. A value on
// hup reloads the certificate and the token keys.
func serve(ctx context.Context, cfg *Config, logger *slog.Logger, hup <-chan os.Signal) error {
	n, err := startNode(cfg, logger)
	if err != nil {
		return err
	}
	return n.run(ctx, hup)
}

// node is a running roomd node: what serve builds and stops.
type node struct {
	cfg      *Config
	log      *slog.Logger
	verifier *auth.Verifier
	certs    *certStore // nil without TLS
	rooms    *room.Manager
	hooks    *hooks.Hooks // nil: no hooks
	cl       *cluster.Cluster
	srv      *server.Server
	ln       net.Listener
}

// prepare loads what the configuration names on disk, the token keys and
// the TLS key pair, so that a mistake there is found before listening (and
// by `roomd config check`).
func prepare(cfg *Config) (*auth.Verifier, *certStore, error) {
	v, err := auth.NewVerifier(cfg.authConfig())
	if err != nil {
		return nil, nil, err
	}
	var certs *certStore
	if cfg.TLS.Cert != "" {
		if certs, err = newCertStore(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return nil, nil, err
		}
	}
	return v, certs, nil
}

// startNode builds a node and opens its listener; run serves it.
func startNode(cfg *Config, logger *slog.Logger) (*node, error) {
	n := &node{cfg: cfg, log: logger}
	var err error
	if n.verifier, n.certs, err = prepare(cfg); err != nil {
		return nil, err
	}
	var prom *server.Prometheus
	if *cfg.Metrics {
		prom = server.NewPrometheus()
	}
	rc := cfg.roomConfig()
	if prom != nil {
		rc.OnLimit = prom.LimitRefused
	}
	if n.rooms, err = room.New(rc); err != nil {
		return nil, err
	}
	name := cfg.nodeName()
	sc := cfg.serverConfig()
	// Listen first: a clustered node tells the others its HTTP address,
	// whose port may be picked here.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		n.rooms.Close()
		return nil, err
	}
	cc, err := cfg.clusterConfig(name, n.rooms, ln.Addr(), logger)
	if prom != nil {
		cc.Metrics = prom
	}
	if err == nil {
		n.hooks, err = cfg.newHooks(logger, prom)
		cc.Hooks = n.hooks
	}
	if err == nil {
		n.cl, err = cluster.New(cc)
	}
	if err != nil {
		ln.Close()
		_ = n.hooks.Close(context.Background())
		n.rooms.Close()
		return nil, err
	}
	sc.Router = n.cl
	sc.Ready = n.cl.Ready
	sc.Hooks = n.hooks
	sc.Auth = n.verifier
	if len(cfg.APIKeys) > 0 {
		sc.APIKeys = auth.NewAPIKeys(cfg.APIKeys)
	}
	if prom != nil {
		sc.Metrics = prom
	}
	sc.Logger = logger
	sc.NodeName = name
	sc.Version = buildVersion()
	if n.srv, err = server.New(sc); err != nil {
		ln.Close()
		n.close()
		return nil, err
	}
	if n.certs != nil {
		ln = tls.NewListener(ln, n.certs.tlsConfig())
	}
	n.ln = ln
	n.logStart(name)
	n.logCluster(cc)
	return n, nil
}

// close stops the cluster layer (a member leaves the cluster) and the
// rooms.
func (n *node) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n.cfg.clustered() {
		n.log.Info("leaving the cluster")
	}
	if err := n.cl.Shutdown(ctx); err != nil {
		n.log.Warn("cluster shutdown", slog.Any(logKeyErr, err))
	}
	if err := n.hooks.Close(ctx); err != nil {
		n.log.Warn("hooks shutdown", slog.Any(logKeyErr, err))
	}
	n.rooms.Close()
}

// drain hands this node's rooms over to the other members, for up to
// grace: a member of a cluster leaves gracefully before its clients are
// told to reconnect elsewhere. A cluster of one has nothing to hand over.
func (n *node) drain(grace time.Duration) {
	if !n.cfg.clustered() {
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
	n.log.Info("draining: handing this node's rooms to the other members", slog.String(logKeyGrace, formatDuration(grace)))
	n.srv.NotReady()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := n.cl.Drain(ctx); err != nil {
		n.log.Warn("drain did not finish; the groups this node still leads elect other leaders, as after a crash",
			slog.Any(logKeyErr, err), slog.Duration(logKeyTook, time.Since(start)))
		return
	}
	n.log.Info("rooms handed over", slog.Duration(logKeyTook, time.Since(start)))
}

// delayClose makes /readyz answer 503 draining for drain_delay while the
// node goes on serving, so that a load balancer polling it takes the node
// out before its listener closes (instead of meeting refused connections).
func (n *node) delayClose() {
	d := time.Duration(n.cfg.DrainDelay)
	if d <= 0 {
		return
	}
	n.srv.NotReady()
	n.log.Info("draining: /readyz answers 503 until the listener closes", slog.String(logKeyDelay, formatDuration(d)))
	time.Sleep(d)
}

// logStart says how the node is set up: dev mode loudly, never a secret.
func (n *node) logStart(name string) {
	cfg := n.cfg
	if n.verifier.Dev() {
		n.log.Warn("DEV MODE: no token key is configured, so every client is anonymous with every permission; do not expose this node")
	} else {
		n.log.Info("tokens verified", slog.Any(logKeyAlgs, n.verifier.Algorithms()))
		for i, s := range cfg.Auth.JWTSecrets {
			if len(s) < 32 {
				n.log.Warn("a JWT secret is shorter than 32 bytes; use at least 32 random bytes", slog.Int(logKeyIndex, i+1))
			}
		}
		if len(cfg.APIKeys) == 0 {
			n.log.Info("the HTTP API is closed: no API key is configured")
		}
	}
	if n.certs != nil {
		leaf := n.certs.leaf()
		n.log.Info("TLS certificate loaded", certAttrs(cfg.TLS.Cert, leaf)...)
		if expiresSoon(leaf, time.Now()) {
			n.log.Warn("the TLS certificate expires within a week, or has expired", certAttrs(cfg.TLS.Cert, leaf)...)
		}
	}
	n.log.Info("listening",
		slog.String(logKeyAddr, n.ln.Addr().String()),
		slog.Bool(logKeyTLS, n.certs != nil),
		slog.String(logKeyNode, name),
		slog.String(logKeyVersion, buildVersion()))
}

func certAttrs(file string, c *x509.Certificate) []any {
	return []any{
		slog.String(logKeyCert, file),
		slog.String(logKeySubject, c.Subject.String()),
		slog.Time(logKeyNotAfter, c.NotAfter),
	}
}

// addr is the listener's address.
func (n *node) addr() string { return n.ln.Addr().String() }

// run serves until ctx ends (or the listener fails), reloading on each value
// of hup, then shuts the node down: /readyz answers 503 for drain_delay
// while the node serves on, a cluster member then hands its rooms over (up
// to shutdown_grace), then every connection gets bye with code shutdown and
// up to shutdown_grace to close, then the member leaves the cluster.
func (n *node) run(ctx context.Context, hup <-chan os.Signal) error {
	errc := make(chan error, 1)
	go func() { errc <- n.srv.Serve(n.ln) }()
	var serveErr error
	served := false
loop:
	for {
		select {
		case serveErr = <-errc:
			served = true
			n.log.Error("serving failed", slog.Any(logKeyErr, serveErr))
			break loop
		case <-hup:
			_ = n.reload()
		case <-ctx.Done():
			break loop
		}
	}
	if !served {
		n.delayClose()
	}
	grace := time.Duration(n.cfg.ShutdownGrace)
	n.drain(grace)
	n.log.Info("shutting down", slog.String(logKeyGrace, formatDuration(grace)))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := n.srv.Shutdown(sctx); err != nil {
		n.log.Warn("shutdown grace ran out; the remaining connections were cut", slog.Any(logKeyErr, err))
	}
	if !served {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	n.close()
	n.log.Info("stopped")
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}

// reload re-reads what SIGHUP reloads: the TLS certificate and the token
// key files (public keys, JWKS); secrets and every other setting take a
// restart. What fails to load leaves the old one in
// force. The outcome is logged, and returned for tests.
func (n *node) reload() error {
	var errs []error
	if n.certs != nil {
		if leaf, err := n.certs.reload(); err != nil {
			n.log.Error("TLS certificate reload failed; the old certificate stays in force", slog.Any(logKeyErr, err))
			errs = append(errs, err)
		} else {
			n.log.Info("TLS certificate reloaded", certAttrs(n.cfg.TLS.Cert, leaf)...)
		}
	}
	keyFiles := len(n.cfg.Auth.PublicKeyFiles) > 0 || n.cfg.Auth.JWKSFile != ""
	if keyFiles {
		if err := n.verifier.Reload(); err != nil {
			n.log.Error("token key reload failed; the old keys stay in force", slog.Any(logKeyErr, err))
			errs = append(errs, err)
		} else {
			n.log.Info("token keys reloaded", slog.Any(logKeyAlgs, n.verifier.Algorithms()))
		}
	}
	if n.certs == nil && !keyFiles {
		n.log.Info("nothing to reload: no TLS certificate, no token key file")
	}
	return errors.Join(errs...)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log.format: want text or json, not %q", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
