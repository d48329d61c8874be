package main

import (
	"context"
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
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
)

// serveOptions are the flags of a node.
type serveOptions struct {
	addr          string
	logFormat     string
	logLevel      string
	nodeName      string
	shutdownGrace time.Duration

	srv   server.Config
	rooms room.Config
}

func newServeFlags(o *serveOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("roomd", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", ":8080", "listen address (host:port; port 0 picks a free one)")
	fs.StringVar(&o.logFormat, "log-format", "", "log format: text or json (default: text on a terminal, json otherwise)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.nodeName, "node-name", "", "this node's name (default: the host name)")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "how long shutdown waits for connections to close after bye")

	c := &o.srv
	fs.DurationVar(&c.HelloTimeout, "hello-timeout", 10*time.Second, "time a new connection has to send hello")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "interval between pings to each connection")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", 10*time.Second, "time a connection has to answer a ping")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "bound on one write to a connection")
	fs.Var(sizeFlag{&c.MaxMessageBytes}, "max-message-bytes", "largest inbound WebSocket message (default 64KiB)")
	fs.IntVar(&c.MaxFramesPerMessage, "max-frames-per-message", 256, "most frames one inbound message may carry")
	fs.Float64Var(&c.FrameRate, "frame-rate", 200, "inbound frames per second per connection")
	fs.IntVar(&c.FrameBurst, "frame-burst", 400, "inbound frame burst per connection")
	fs.Var(sizeFlag{&c.ByteRate}, "byte-rate", "inbound bytes per second per connection (default 1MiB)")
	fs.IntVar(&c.FloodStrikes, "flood-strikes", 100, "rate-limited frames tolerated before a connection is closed")
	fs.Var(sizeFlag{&c.QueueMaxBytes}, "queue-max-bytes", "outbound queue bound per connection (default 1MiB)")
	fs.IntVar(&c.MaxRoomsPerConn, "max-rooms-per-conn", 64, "rooms one connection may join")

	r := &o.rooms
	fs.IntVar(&r.Default.HistorySize, "history-size", 100, "messages kept per room")
	fs.DurationVar(&r.Default.HistoryTTL, "history-ttl", 10*time.Minute, "age limit of a room's history")
	fs.DurationVar(&r.Default.IdleTTL, "room-idle-ttl", 0, "how long an empty room lives on (default: history-ttl)")
	fs.IntVar(&r.Default.MaxMembers, "max-members", 0, "members per room (0: no limit)")
	fs.Var(sizeFlag{&r.Default.MaxMessageBytes}, "max-payload-bytes", "largest message payload (default 64KiB)")
	fs.Var(sizeFlag{&r.Default.MaxPresenceBytes}, "max-presence-bytes", "largest presence data (default 1KiB)")
	fs.IntVar(&r.Default.StateMaxKeys, "state-max-keys", 10000, "state keys per room")
	fs.Var(sizeFlag{&r.Default.StateMaxBytes}, "state-max-bytes", "state bytes per room (default 4MiB)")
	fs.DurationVar(&r.PresenceGrace, "presence-grace", 5*time.Second, "how long a dropped connection stays present")
	fs.DurationVar(&r.DedupeWindow, "dedupe-window", 5*time.Minute, "how long idempotency keys are remembered (at least 5m)")
	return fs
}

func runServe(args []string) error {
	var o serveOptions
	fs := newServeFlags(&o)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: roomd [flags]\n\nRuns a roomd node. Every flag can also be set as ROOMD_<NAME> (e.g. ROOMD_ADDR).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	logger, err := newLogger(os.Stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, &o, logger)
}

// serve runs a node until ctx ends, then shuts it down.
func serve(ctx context.Context, o *serveOptions, logger *slog.Logger) error {
	rooms, err := room.New(o.rooms)
	if err != nil {
		return err
	}
	defer rooms.Close()
	cfg := o.srv
	cfg.Router = cluster.NewLocal(rooms, o.nodeName)
	cfg.Logger = logger
	cfg.NodeName = o.nodeName
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	logger.Warn("DEV MODE: no token key is configured, so every client is anonymous with every permission; do not expose this node")
	logger.Info("listening", slog.String("addr", ln.Addr().String()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", slog.Duration("grace", o.shutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	logger.Info("stopped")
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
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
	return nil, fmt.Errorf("--log-format: want text or json, not %q", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
