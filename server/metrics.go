package server

import "github.com/roomd/roomd/protocol"

// Metrics receives the server's measurements. The zero Config uses a no-op;
// NewPrometheus returns one backed by Prometheus on its own registry.
type Metrics interface {
	// ConnOpened and ConnClosed count WebSocket sessions.
	ConnOpened()
	ConnClosed()
	// AuthFailure counts a refused token or permission, by reason.
	AuthFailure(reason string)
	// ErrorSent counts an err frame sent, by code.
	ErrorSent(code protocol.Code)
	// ByeSent counts a connection closed by the server, by code.
	ByeSent(code protocol.Code)
	// RateLimited counts an inbound frame refused by a rate limit.
	RateLimited()
}

type noopMetrics struct{}

func (noopMetrics) ConnOpened()             {}
func (noopMetrics) ConnClosed()             {}
func (noopMetrics) AuthFailure(string)      {}
func (noopMetrics) ErrorSent(protocol.Code) {}
func (noopMetrics) ByeSent(protocol.Code)   {}
func (noopMetrics) RateLimited()            {}

func (s *Server) authFailed(reason string)     { s.cfg.Metrics.AuthFailure(reason) }
func (s *Server) errorCode(code protocol.Code) { s.cfg.Metrics.ErrorSent(code) }
func (s *Server) byeCode(code protocol.Code)   { s.cfg.Metrics.ByeSent(code) }
