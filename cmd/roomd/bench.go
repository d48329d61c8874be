package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/roomd/roomd/internal/bench"
)

// defaultServerFrameRate is roomd's default --frame-rate: a bench publisher
// faster than this needs the server started with a higher one.
const defaultServerFrameRate = 200

// The server's per-address defaults (limits.conn_rate_per_addr, its burst,
// limits.max_pending_per_addr): a bench's connections all come from one
// address.
const (
	defaultServerConnRatePerAddr  = 20
	defaultServerConnBurstPerAddr = 5 * defaultServerConnRatePerAddr
	defaultServerPendingPerAddr   = 32
)

// newBenchFlags binds the flags of roomd bench to c.
func newBenchFlags(c *bench.Config, urls, cpuProfile *string, asJSON, schedBatch *bool, hk *hookBenchFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("roomd bench", flag.ContinueOnError)
	fs.StringVar(&c.Scenario, "scenario", c.Scenario, "scenario: "+strings.Join(bench.Scenarios, ", "))
	fs.StringVar(urls, "url", *urls, "node base URLs, comma-separated; connections are spread over them")
	fs.IntVar(&c.Rooms, "rooms", c.Rooms, "rooms")
	fs.IntVar(&c.Subs, "subs", c.Subs, "fanout, floor: subscribers per room; chat: members per room (each publishes); joinstorm: members per room")
	fs.IntVar(&c.Pubs, "pubs", c.Pubs, "fanout, sse: publishers per room")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "messages per second published, all publishers together")
	fs.IntVar(&c.Size, "size", c.Size, fmt.Sprintf("payload bytes (a msgpack bin, at least %d)", bench.MinPayload))
	fs.BoolVar(&c.PayloadText, "payload-text", c.PayloadText, "fanout, chat: fill payloads after their stamp with chat-like text, not zeros (something compression works on as it does on chat)")
	fs.BoolVar(&c.Deflate, "deflate", c.Deflate, "offer permessage-deflate on every connection (the server's compressed messages are inflated, publishes go compressed); run roomd with compression on for the bench's namespace")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measurement window; connect, sseidle: how long the connections are held")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "publishing before the measurement window")
	fs.DurationVar(&c.Drain, "drain", c.Drain, "longest wait for in-flight messages after the window")
	fs.IntVar(&c.Conns, "conns", c.Conns, "connect: connections to open")
	fs.DurationVar(&c.JoinOver, "join-over", c.JoinOver, "joinstorm: spread the members' connections over this (0: 1s)")
	fs.IntVar(&c.Observers, "observers", c.Observers, "sse, sseidle: observers, spread over the rooms")
	fs.Float64Var(&c.NonReaders, "non-readers", c.NonReaders, "fanout: percentage of subscribers that join but never read")
	fs.Float64Var(&c.QuietRate, "quiet-rate", 0, "fanout: messages per second of one more room of --subs readers and one publisher, whose answers are reported apart (a well-behaved room among flooded ones)")
	fs.Float64Var(&c.APIRate, "api-rate", 0, "fanout: messages per second published into the first room through the HTTP API as well, from 4 clients; answers counted by status")
	fs.StringVar(&c.Token, "token", c.Token, "token sent in hello (and as Bearer to SSE)")
	fs.BoolVar(&c.TLS, "tls", false, "dial the nodes over TLS (https://, wss://) without verifying their certificate: a node serving a self-signed one (bench only)")
	fs.BoolVar(asJSON, "json", false, "print the result as JSON")
	fs.IntVar(&c.PID, "pid", c.PID, "server process id, to measure its CPU per delivery and RSS per connection from /proc")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", c.DialConcurrency, "connections opened at once")
	fs.BoolVar(&c.GoroutineReaders, "goroutine-readers", false, "read every connection in a goroutine of its own (gorilla, net/http) instead of subscribers and SSE observers through epoll pollers")
	fs.IntVar(&c.Pollers, "pollers", c.Pollers, "epoll pollers reading subscribers and SSE observers (0: one per core, at most 8)")
	fs.BoolVar(&c.ReadLatency, "read-latency", false, "measure latency to the bench's read of a message, not to its arrival in the receiver's socket (the kernel's stamp, taken when pollers read every receiver)")
	fs.DurationVar(&c.ReadTick, "read-tick", c.ReadTick, "how often a poller reads its connections while messages flow (0: on every wake-up); latency includes up to one tick")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "bound on one dial + hello + join")
	fs.StringVar(&c.RoomPrefix, "room-prefix", "", "room name prefix (default: bench: and a random run id)")
	fs.StringVar(cpuProfile, "cpuprofile", "", "write the bench process's own CPU profile to this file")
	fs.StringVar(&hk.addr, "hook-backend", "", "start a loopback hook backend on this host:port (run roomd with --hook-url at it and --hooks publish,published) and report what it saw")
	fs.StringVar(&hk.secret, "hook-secret", "bench", "the hook backend's secret (roomd's --hooks-secret)")
	fs.BoolVar(schedBatch, "sched-batch", true, "run the bench's threads under SCHED_BATCH (Linux), so that their wake-ups never preempt the server on a machine they share")
	return fs
}

func runBench(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := io.Writer(nil)
	if isTTY(os.Stderr) {
		progress = os.Stderr
	}
	return benchCommand(ctx, args, os.Stdout, os.Stderr, progress)
}

// benchCommand runs roomd bench with args; progress (nil for none) gets the
// live status line.
func benchCommand(ctx context.Context, args []string, stdout, stderr, progress io.Writer) error {
	cfg := bench.Defaults()
	urls := strings.Join(cfg.URLs, ",")
	var asJSON, schedBatch bool
	var cpuProfile string
	var hk hookBenchFlags
	fs := newBenchFlags(&cfg, &urls, &cpuProfile, &asJSON, &schedBatch, &hk)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: roomd bench [flags]\n\nLoads roomd nodes over real sockets and measures loss, order and latency.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	cfg.URLs = nil
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.URLs = append(cfg.URLs, u)
		}
	}
	if os.Getenv("GOGC") == "" {
		// The hot path allocates little, and what it does is short-lived.
		debug.SetGCPercent(400)
	}
	cfg.Progress = progress
	if schedBatch {
		if err := bench.SchedBatch(); err != nil {
			fmt.Fprintf(stderr, "roomd bench: SCHED_BATCH not set: %v\n", err)
		}
	}
	if w := perConnRate(&cfg); w > defaultServerFrameRate {
		fmt.Fprintf(stderr, "roomd bench: each publisher sends %.0f msg/s; start roomd with --frame-rate %.0f or more (default %d), or add --pubs\n",
			w, w*1.25, defaultServerFrameRate)
	}
	if n := cfg.Rooms * (cfg.Subs + cfg.Pubs); n > defaultServerConnBurstPerAddr {
		fmt.Fprintf(stderr, "roomd bench: %d connections from one address; start roomd with --conn-rate-per-addr %d --max-pending-per-addr %d or more (defaults %d/s in bursts of %d, and %d), or it refuses some with HTTP 429\n",
			n, n, n, defaultServerConnRatePerAddr, defaultServerConnBurstPerAddr, defaultServerPendingPerAddr)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var backend *bench.HookBackend
	if hk.addr != "" {
		var err error
		if backend, err = bench.StartHookBackend(hk.addr, []byte(hk.secret)); err != nil {
			return fmt.Errorf("bench: hook backend: %w", err)
		}
		defer backend.Close()
		fmt.Fprintf(stderr, "roomd bench: hook backend at %s (roomd --hooks-secret %s --hook-url %s --hooks publish,published)\n",
			backend.URL(), hk.secret, backend.URL())
	}
	res, err := bench.Run(ctx, cfg)
	if res != nil && backend != nil {
		res.Hooks = settleHooks(ctx, backend, cfg.Drain)
	}
	if res != nil {
		if werr := writeBenchResult(stdout, res, asJSON); werr != nil && err == nil {
			err = werr
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil // interrupted: what was measured is printed
	}
	return err
}

func writeBenchResult(w io.Writer, res *bench.Result, asJSON bool) error {
	if asJSON {
		return res.WriteJSON(w)
	}
	return res.WriteTable(w)
}

// perConnRate is the publish rate of each publishing connection.
func perConnRate(c *bench.Config) float64 {
	if c.Rooms <= 0 || c.Rate <= 0 {
		return 0
	}
	switch c.Scenario {
	case "chat":
		if c.Subs > 0 {
			return c.Rate / float64(c.Rooms*c.Subs)
		}
	case "fanout", "sse", "joinstorm", "":
		if c.Pubs > 0 {
			return c.Rate / float64(c.Rooms*c.Pubs)
		}
	}
	return 0
}

func isTTY(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// hookBenchFlags are roomd bench's hook backend flags.
type hookBenchFlags struct {
	addr, secret string
}

// settleHooks waits, up to drain, until the backend's published count
// stops growing for 200 ms, and returns its stats.
func settleHooks(ctx context.Context, b *bench.HookBackend, drain time.Duration) *bench.HookStats {
	deadline := time.Now().Add(drain)
	last := b.Stats().Published
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		n := b.Stats().Published
		if n == last {
			break
		}
		last = n
	}
	return b.Stats()
}
