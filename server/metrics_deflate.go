package server

import "github.com/prometheus/client_golang/prometheus"

// deflateMetrics are the Prometheus side of permessage-deflate
// (ws_deflate.go).
type deflateMetrics struct {
	messages, raw, wire prometheus.Counter
	inflateTooLarge     prometheus.Counter
}

func newDeflateMetrics(counter func(name, help string) prometheus.Counter) *deflateMetrics {
	return &deflateMetrics{
		messages:        counter("ws_deflate_messages_total", "Outbound WebSocket messages sent compressed (permessage-deflate)."),
		raw:             counter("ws_deflate_raw_bytes_total", "Bytes of the frames of the outbound messages sent compressed, before compression."),
		wire:            counter("ws_deflate_wire_bytes_total", "Bytes of the compressed bodies of the outbound messages sent compressed."),
		inflateTooLarge: counter("ws_inflate_too_large_total", "Inbound compressed WebSocket messages refused for inflating past limits.max_message_bytes (bye 103)."),
	}
}

func (p *Prometheus) Deflated(raw, wire int) {
	p.deflate.messages.Inc()
	p.deflate.raw.Add(float64(raw))
	p.deflate.wire.Add(float64(wire))
}

func (p *Prometheus) InflateTooLarge() { p.deflate.inflateTooLarge.Inc() }
