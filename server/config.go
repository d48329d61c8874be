package server

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/server/admission"
	"github.com/roomd/roomd/server/auth"
)

// Config configures a Server. Every zero value means the default given on the
// field.
type Config struct {
	// Router carries room operations. Required.
	Router cluster.Router
	// Auth verifies tokens. Nil means dev mode: anonymous connections with
	// every permission.
	Auth *auth.Verifier
	// APIKeys authenticate the HTTP API (Authorization: Bearer). Nil or
	// empty means the API is open in dev mode and closed otherwise.
	APIKeys *auth.APIKeys
	// AllowedOrigins lists the Origin values a browser may connect from,
	// for WebSocket, SSE and CORS ("https://app.example.com"; "*" allows
	// any). Nil means any origin in dev mode, and same host otherwise.
	AllowedOrigins []string
	// MaxConns bounds the WebSocket connections of this node (504 beyond).
	// Zero means no limit.
	MaxConns int
	// MaxConnsPerUser bounds one user's WebSocket connections on this node
	// (504 beyond). Zero means no limit. Anonymous connections are not
	// counted per user.
	MaxConnsPerUser int
	// MaxPending bounds connections that have not yet said hello; more are
	// refused at upgrade with HTTP 503. Zero means 1,024.
	MaxPending int
	// MaxPendingPerAddr bounds the connections of one source address that
	// have not yet said hello; more are refused at upgrade with HTTP 429,
	// code rate_limited. Zero means 32.
	MaxPendingPerAddr int
	// ConnRatePerAddr is the new WebSocket connections and SSE streams per
	// second one source address may open; more are refused with HTTP 429,
	// code rate_limited. Zero means 20.
	ConnRatePerAddr float64
	// ConnBurstPerAddr is the burst of ConnRatePerAddr. Zero means
	// 5 × ConnRatePerAddr.
	ConnBurstPerAddr int
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For (else Forwarded) header names a connection's source
	// address for the per-address limits. Nil means none: the peer's
	// address counts, and the headers are ignored.
	TrustedProxies []netip.Prefix

	// SSEPingInterval is how often an idle SSE stream gets a ": ping"
	// comment. Zero means 15 s.
	SSEPingInterval time.Duration
	// SSERetry is the reconnection delay an SSE stream announces. Zero
	// means 3 s.
	SSERetry time.Duration
	// SSEQueueMaxBytes bounds an SSE observer's outbound queue; an
	// observer that falls further behind is cut. Zero means QueueMaxBytes.
	SSEQueueMaxBytes int
	// ReadHeaderTimeout bounds the time a client has to send an HTTP
	// request's headers (a WebSocket upgrade's too), so a client that
	// trickles bytes cannot hold a socket; over TLS it bounds the TLS
	// handshake too (net/http). Zero means 5 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes an HTTP keep-alive connection idle that long.
	// Zero means 60 s.
	IdleTimeout time.Duration
	// MaxBodyBytes bounds an HTTP API request body. Zero means 256 KiB.
	MaxBodyBytes int
	// APIBodyTimeout bounds the time an HTTP API request's body takes to
	// arrive, from the start of reading it (after the API key is checked);
	// a slower body gets HTTP 408 and the connection is closed. Zero means
	// 10 s.
	APIBodyTimeout time.Duration
	// APIRequestTimeout bounds an HTTP API request from its headers to its
	// answer, body and room operation together; an operation still running
	// then gets HTTP 503 (code 6), and writing the answer has WriteTimeout
	// more. Zero means 30 s.
	APIRequestTimeout time.Duration

	// NoWeb stops serving the web assets at / (the SDK bundle at
	// /sdk/roomd.min.js and the demo apps). Zero serves them.
	NoWeb bool

	// Ready tells whether the router serves rooms yet (a cluster member's
	// Cluster.Ready: nil once its cluster has formed). While it returns an
	// error, /readyz answers 503 with that error, and joins and the other
	// room ops are answered with unavailable (6) at once. Nil means always
	// ready.
	Ready func() error

	// Hooks calls the application's backend at connect, join and publish
	// (docs/PROTOCOL.md, "Hooks"). Nil means no hooks.
	Hooks *hooks.Hooks

	// Metrics receives measurements. Nil means none are kept.
	Metrics Metrics
	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger
	// NodeName is sent in welcome. Zero means the host name.
	NodeName string
	// Version is reported by /v1/info. Zero means "dev".
	Version string

	// HelloTimeout bounds the wait for a connection's hello. Zero means 10 s.
	HelloTimeout time.Duration
	// PingInterval is how often the server pings each connection, and the
	// longest a connection goes without receiving any frame. Zero means 25 s.
	PingInterval time.Duration
	// PongTimeout is how long after a ping a connection may stay silent
	// before it is closed with no_pong. Zero means 10 s.
	PongTimeout time.Duration
	// WriteTimeout bounds one write to a connection. Zero means 10 s.
	WriteTimeout time.Duration
	// ByeLinger is how long a connection given a bye waits for its client to
	// take the rest of what was written and the bye, when its socket is
	// full (a client cut with slow_consumer has stopped reading): its queue
	// is dropped by then, and what it holds is the socket and its writer.
	// Zero means 30 s.
	ByeLinger time.Duration
	// CloseTimeout bounds the wait for a client's close reply after a bye.
	// Zero means 1 s.
	CloseTimeout time.Duration

	// MaxMessageBytes bounds one inbound WebSocket message. Zero means 64 KiB.
	MaxMessageBytes int
	// MaxFramesPerMessage bounds the frames one inbound message may carry.
	// Zero means 256.
	MaxFramesPerMessage int
	// FrameRate is the inbound frames per second a connection may send.
	// Zero means 200.
	FrameRate float64
	// FrameBurst is the inbound frame burst. Zero means 2 × FrameRate.
	FrameBurst int
	// ByteRate is the inbound bytes per second a connection may send. Zero
	// means 1 MiB/s. The byte burst is max(ByteRate, MaxMessageBytes).
	ByteRate int
	// FloodStrikes is how many rate-limited frames a connection may send
	// (refilled at FloodStrikes/10 per second) before it is closed with
	// rate_limited. Zero means 100.
	FloodStrikes int
	// QueueMaxBytes bounds a connection's outbound queue. Zero means 1 MiB.
	QueueMaxBytes int
	// SocketUnsentBytes bounds what a WebSocket connection's or SSE
	// stream's socket holds not yet sent (Linux: TCP_NOTSENT_LOWAT); what
	// a client is slower to take waits in its queue, seen by QueueMaxBytes
	// and WriteTimeout, instead of in the kernel's send buffer (up to
	// 4 MiB a socket on loopback). Zero means 128 KiB.
	SocketUnsentBytes int
	// MaxRoomsPerConn bounds the rooms one connection may join. Zero means 64.
	MaxRoomsPerConn int
	// MaxOpsInFlight bounds a connection's room operations (join, leave,
	// pub, pres, set) waiting or running; they run off the connection's
	// reader, one room's in order, different rooms' in parallel. At the
	// bound the reader waits while operations complete; when none has
	// for 500 ms, more get err 7 overloaded (an ephemeral pub without id is
	// dropped). Zero means 64.
	MaxOpsInFlight int
	// ReadBufferSize is each connection's WebSocket read buffer, held for
	// the connection's life; larger messages are read through it in
	// pieces. Zero means 1 KiB.
	ReadBufferSize int
	// WriteBufferSize is the size of the pooled WebSocket write buffers,
	// held only while writing. Zero means 16 KiB.
	WriteBufferSize int
	// ParkAfter is how long a connection may send nothing before its reader
	// goroutine and read buffer are let go: its socket then waits in an
	// epoll set, and the next bytes give it a goroutine again (Linux, plain
	// TCP). Zero means 10s; negative: never park (raw SSE streams, which
	// park as soon as they start, then keep their handler goroutine). (Shorter parks more
	// connections sooner, but a client sending a message every few seconds
	// then pays a wake-up for each: a goroutine, buffers, limiter levels.)
	ParkAfter time.Duration
	// Flushers bounds the goroutines that write connections' queued frames
	// (and raw SSE streams' events) in parallel, without blocking. Zero
	// means half the cores (GOMAXPROCS / 2, at least 1), read again at each
	// burst: a write is mostly the kernel's work, and the other cores are
	// left to reading, publishing and the network's receive side
	// (measured: docs/BENCHMARKS.md, "What we tried").
	Flushers int

	// Deflate offers permessage-deflate (RFC 7692, without context
	// takeover) to WebSocket clients that ask for it. On a connection that
	// negotiated it, the events of rooms whose namespace has Compression
	// on (room.Namespace) go compressed, each compressed once for all its
	// connections. Zero (false): never offered.
	Deflate bool
	// DeflateMinBytes is the smallest frame that goes compressed; smaller
	// ones gain nothing (docs/BENCHMARKS.md) and go as they are. Zero
	// means 160.
	DeflateMinBytes int

	// AdmissionTarget is the delay above which the node refuses publishes
	// with err 7 overloaded (HTTP 503 with Retry-After): the 90th
	// percentile delay from an event's creation to the node's own write of
	// it (not one that waited for a client's socket), or a room's 90th
	// percentile wait between the read of a publish and the start of its
	// operation, over AdmissionInterval (docs/OPERATIONS.md, "Overload").
	// Zero means 50 ms;
	// negative turns admission off.
	AdmissionTarget time.Duration
	// AdmissionInterval is how long delays are measured before the
	// admission limits move. Zero means 100 ms.
	AdmissionInterval time.Duration
}

// ErrNoRouter is returned by New when Config.Router is nil.
var ErrNoRouter = errors.New("server: config has no Router")

func (c *Config) fill() error {
	if c.Router == nil {
		return ErrNoRouter
	}
	if c.Metrics == nil {
		c.Metrics = noopMetrics{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
		if c.NodeName == "" {
			c.NodeName = "roomd"
		}
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	setDur(&c.HelloTimeout, 10*time.Second)
	setDur(&c.PingInterval, 25*time.Second)
	setDur(&c.PongTimeout, 10*time.Second)
	setDur(&c.WriteTimeout, 10*time.Second)
	setDur(&c.CloseTimeout, time.Second)
	setDur(&c.ByeLinger, 30*time.Second)
	setInt(&c.MaxMessageBytes, 64<<10)
	setInt(&c.MaxFramesPerMessage, 256)
	if c.FrameRate <= 0 {
		c.FrameRate = 200
	}
	setInt(&c.FrameBurst, int(2*c.FrameRate))
	setInt(&c.ByteRate, 1<<20)
	setInt(&c.FloodStrikes, 100)
	setInt(&c.QueueMaxBytes, 1<<20)
	setInt(&c.SocketUnsentBytes, 128<<10)
	setInt(&c.MaxRoomsPerConn, 64)
	setInt(&c.MaxOpsInFlight, 64)
	setInt(&c.ReadBufferSize, 1<<10)
	c.ReadBufferSize = max(c.ReadBufferSize, 512) // gorilla reuses only readers over 256 bytes
	setInt(&c.WriteBufferSize, 16<<10)
	setInt(&c.DeflateMinBytes, 160)
	setDur(&c.ParkAfter, 10*time.Second)
	setInt(&c.MaxPending, 1024)
	setInt(&c.MaxPendingPerAddr, 32)
	if c.ConnRatePerAddr <= 0 {
		c.ConnRatePerAddr = 20
	}
	setInt(&c.ConnBurstPerAddr, max(1, int(5*c.ConnRatePerAddr)))
	setDur(&c.SSEPingInterval, 15*time.Second)
	setDur(&c.SSERetry, 3*time.Second)
	setInt(&c.SSEQueueMaxBytes, c.QueueMaxBytes)
	setInt(&c.MaxBodyBytes, 256<<10)
	setDur(&c.APIBodyTimeout, 10*time.Second)
	setDur(&c.APIRequestTimeout, 30*time.Second)
	setDur(&c.ReadHeaderTimeout, 5*time.Second)
	setDur(&c.IdleTimeout, 60*time.Second)
	if c.AdmissionTarget == 0 {
		c.AdmissionTarget = admission.DefaultTarget
	}
	setDur(&c.AdmissionInterval, admission.DefaultInterval)
	return nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}
