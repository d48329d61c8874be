package server

import (
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/server/admission"
)

// Metrics receives the server's measurements. Config.Metrics nil means a
// no-op; NewPrometheus returns one backed by Prometheus on its own registry.
// Every method must be cheap and safe for concurrent use: some run once per
// delivered frame.
type Metrics interface {
	// ConnOpened and ConnClosed count WebSocket sessions (after hello).
	ConnOpened()
	ConnClosed()
	// ObserverOpened and ObserverClosed count SSE streams.
	ObserverOpened()
	ObserverClosed()
	// FrameIn counts an inbound frame by type and MessageIn an inbound
	// WebSocket message by size.
	FrameIn(t string)
	MessageIn(bytes int)
	// MessageOut counts an outbound WebSocket message (or SSE write) of
	// frames frames and bytes bytes.
	MessageOut(frames, bytes int)
	// Delivered counts events handed to a connection's or observer's queue.
	Delivered(kind string)
	// SlowConsumer counts a connection or observer cut for falling behind.
	SlowConsumer(kind string) // "ws" or "sse"
	// EphemeralDropped counts ephemeral frames dropped under backpressure.
	EphemeralDropped()
	// TLSHandshakeFailed counts a TLS handshake that failed or timed out
	// (timeouts.handshake).
	TLSHandshakeFailed()
	// PublishToWrite observes the time from a durable event's creation to
	// its write on a socket.
	PublishToWrite(d time.Duration)
	// AuthFailure counts a refused token or permission, by reason.
	AuthFailure(reason string)
	// ErrorSent counts an err frame or HTTP API error, by code.
	ErrorSent(code protocol.Code)
	// ByeSent counts a connection closed by the server, by code.
	ByeSent(code protocol.Code)
	// RateLimited counts an inbound frame refused by a rate limit.
	RateLimited()
	// LimitRefused counts a connection or operation refused by a node,
	// address or connection limit, by the limit's name ("pending",
	// "addr_pending", "addr_rate", "conn_ops").
	LimitRefused(limit string)
	// AdmissionRefused counts a publish refused by admission, by reason
	// ("room", "publisher").
	AdmissionRefused(reason string)
	// AdmissionState reports admission's measures and limits at the end
	// of each interval with traffic.
	AdmissionState(st admission.State)
	// APIRequest counts an HTTP API request by route pattern and status.
	APIRequest(route string, status int)
	// Deflated counts an outbound WebSocket message sent compressed
	// (permessage-deflate): raw, the bytes of its frames, and wire, the
	// bytes of its compressed body.
	Deflated(raw, wire int)
	// InflateTooLarge counts an inbound compressed message refused for
	// inflating past the message size bound.
	InflateTooLarge()
}

type noopMetrics struct{}

func (noopMetrics) ConnOpened()                  {}
func (noopMetrics) ConnClosed()                  {}
func (noopMetrics) ObserverOpened()              {}
func (noopMetrics) ObserverClosed()              {}
func (noopMetrics) FrameIn(string)               {}
func (noopMetrics) MessageIn(int)                {}
func (noopMetrics) MessageOut(int, int)          {}
func (noopMetrics) Deflated(int, int)            {}
func (noopMetrics) InflateTooLarge()             {}
func (noopMetrics) Delivered(string)             {}
func (noopMetrics) SlowConsumer(string)          {}
func (noopMetrics) EphemeralDropped()            {}
func (noopMetrics) TLSHandshakeFailed()          {}
func (noopMetrics) PublishToWrite(time.Duration) {}
func (noopMetrics) AuthFailure(string)           {}
func (noopMetrics) ErrorSent(protocol.Code)      {}
func (noopMetrics) ByeSent(protocol.Code)        {}
func (noopMetrics) RateLimited()                 {}
func (noopMetrics) APIRequest(string, int)       {}
func (noopMetrics) LimitRefused(string)          {}

func (noopMetrics) AdmissionRefused(string)        {}
func (noopMetrics) AdmissionState(admission.State) {}

func (s *Server) authFailed(reason string)     { s.cfg.Metrics.AuthFailure(reason) }
func (s *Server) errorCode(code protocol.Code) { s.cfg.Metrics.ErrorSent(code) }
func (s *Server) byeCode(code protocol.Code)   { s.cfg.Metrics.ByeSent(code) }
