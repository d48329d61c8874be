package server

import (
	"log"
	"log/slog"
	"strings"
)

// tlsHandshakeError is how net/http begins the line it logs when a TLS
// handshake fails: a client silent past timeouts.handshake, or not speaking
// TLS, or refusing the certificate.
const tlsHandshakeError = "http: TLS handshake error"

// httpErrorLog is the http.Server's ErrorLog. A failed TLS handshake is
// counted (roomd_tls_handshake_failures_total), not logged line by line:
// a client can fail handshakes as fast as it connects, and must not be
// able to fill the log. Anything else net/http reports goes to the log at
// warn.
func (s *Server) httpErrorLog() *log.Logger {
	return log.New(httpLogWriter{s}, "", 0)
}

type httpLogWriter struct{ s *Server }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.HasPrefix(msg, tlsHandshakeError) {
		w.s.tlsFailed.Add(1)
		w.s.cfg.Metrics.TLSHandshakeFailed()
		return len(p), nil
	}
	w.s.cfg.Logger.Warn("http server", slog.String(logKeyErr, msg))
	return len(p), nil
}

// TLSHandshakeFailures counts the TLS handshakes that failed.
func (s *Server) TLSHandshakeFailures() int64 { return s.tlsFailed.Load() }
