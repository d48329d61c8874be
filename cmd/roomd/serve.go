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

	"github.com/roomd/roomd"
	"github.com/roomd/roomd/internal/config"
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
	logKeySubject  = "subject"
	logKeyNotAfter = "not_after"
	logKeyCert     = "cert"
)

// runServe is `roomd serve` (and `roomd` without a subcommand).
func runServe(args []string, stdout, stderr io.Writer) error {
	var given []config.FlagValue
	fs := flag.NewFlagSet("roomd serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.AddFlags(fs, &given)
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
	cfg, err := config.Load(config.Sources{File: config.File(given, config.OSEnv), Env: config.OSEnv, Flags: given})
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
	config.PrintFlags(w)
}

// serve runs a node with cfg until ctx ends, then shuts it down. A value on
// hup reloads the certificate and the token keys.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, hup <-chan os.Signal) error {
	n, err := startNode(cfg, logger)
	if err != nil {
		return err
	}
	return n.run(ctx, hup)
}

// node is a running roomd node and what the process adds to it: the
// listener and its TLS certificate.
type node struct {
	*roomd.Node
	cfg   *config.Config
	log   *slog.Logger
	certs *certStore // nil without TLS
	ln    net.Listener
}

// prepare loads what the configuration names on disk, the token keys and
// the TLS key pair, so that a mistake there is found before listening (and
// by `roomd config check`).
func prepare(cfg *config.Config) (*auth.Verifier, *certStore, error) {
	v, err := auth.NewVerifier(cfg.AuthConfig())
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

// startNode builds a node (package roomd) and opens its listener; run
// serves it.
func startNode(cfg *config.Config, logger *slog.Logger) (*node, error) {
	n := &node{cfg: cfg, log: logger}
	var err error
	if _, n.certs, err = prepare(cfg); err != nil {
		return nil, err
	}
	// Listen first: a clustered node tells the others its HTTP address,
	// whose port may be picked here.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	n.Node, err = roomd.New(roomd.Config{Settings: cfg, Addr: ln.Addr(), Logger: logger, Version: buildVersion()})
	if err != nil {
		ln.Close()
		return nil, err
	}
	if n.certs != nil {
		ln = tls.NewListener(ln, n.certs.tlsConfig())
	}
	n.ln = ln
	n.logStart()
	return n, nil
}

// logStart says where the node listens, and with which certificate.
func (n *node) logStart() {
	cfg := n.cfg
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
		slog.String(logKeyNode, n.Name()),
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
// of hup, then closes the node (roomd.Node.Close): /readyz answers 503 for
// drain_delay while the node serves on, a cluster member then hands its
// rooms over (up to shutdown_grace), then every connection gets bye with
// code shutdown and up to shutdown_grace to close, then the member leaves
// the cluster.
func (n *node) run(ctx context.Context, hup <-chan os.Signal) error {
	errc := make(chan error, 1)
	go func() { errc <- n.Serve(n.ln) }()
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
	_ = n.Close(context.Background()) // each step is bounded by its setting, and logged
	if !served {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
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
		if err := n.ReloadKeys(); err != nil {
			n.log.Error("token key reload failed; the old keys stay in force", slog.Any(logKeyErr, err))
			errs = append(errs, err)
		} else {
			n.log.Info("token keys reloaded")
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
