package server

import (
	"errors"
	"net/http"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/room"
)

// permessage-deflate (RFC 7692), offered when Config.Deflate is on. The
// server answers an acceptable offer with no context takeover either way
// (wsframe.DeflateResponse), so a connection keeps no compression state:
// an event of a room whose namespace has compression on is compressed
// once, on the first write that needs it (room.Event.Deflated), and the
// same bytes go to every connection that negotiated the extension; the
// others get the plain frame, through the unchanged plain path. A message
// of several frames is one DEFLATE body: the shared compressed pieces,
// and stored blocks for the frames not compressed (replies, small ones).
// Inbound compressed messages are inflated by the reader (wsframe),
// bounded by MaxMessageBytes after inflation.

// upgraderFor returns the upgrader for r, and whether it negotiates
// permessage-deflate: when the server offers it and r holds an offer it
// can accept (wsframe.DeflateOffered, stricter than gorilla's check, which
// takes any offer whatever its parameters). gorilla then writes the
// answer, which is the one roomd gives (wsframe.DeflateResponse); its Conn
// is left behind after the upgrade.
func (s *Server) upgraderFor(r *http.Request) (*websocket.Upgrader, bool) {
	if !s.cfg.Deflate || !wsframe.DeflateOffered(r.Header) {
		return &s.upgrader, false
	}
	up := s.upgrader
	up.EnableCompression = true
	r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate")
	return &up, true
}

// deflating reports whether the session sends ev's frame compressed: it
// negotiated permessage-deflate, the frame is not under DeflateMinBytes
// and ev's room's namespace has compression on.
func (ss *session) deflating(ev *room.Event) bool {
	return ss.deflate && len(ev.Frame) >= ss.srv.cfg.DeflateMinBytes && ss.srv.cfg.Router.Settings(ev.Room).Compression
}

// renderDeflated builds the message of frames compressed, when one of them
// goes compressed, and reports whether it did. Turn holder only.
func (w *wsOut) renderDeflated(p *netio.Piece, frames []outItem) bool {
	some := false
	for i := range frames {
		if frames[i].deflate {
			some = true
			break
		}
	}
	if !some {
		return false
	}
	if len(frames) == 1 {
		p.B = wsframe.TrimSyncTail(frames[0].ev.Deflated(wsframe.Deflate))
		p.Size = len(frames[0].b)
	} else {
		body := wsframe.Body{B: p.Buffer()}
		for i := range frames {
			it := &frames[i]
			if it.deflate {
				body.Deflated(it.ev.Deflated(wsframe.Deflate))
			} else {
				body.Stored(it.b)
			}
			p.Size += len(it.b)
		}
		p.B = body.Done()
	}
	p.H = wsframe.AppendDeflatedHeader(p.Hdr[:0], wsframe.OpBinary, len(p.B))
	w.ss.srv.cfg.Metrics.Deflated(p.Size, len(p.B))
	return true
}

// inflateTooLarge counts a compressed message refused for inflating past
// the size bound.
func (ss *session) inflateTooLarge(err error) {
	if errors.Is(err, wsframe.ErrInflatedTooLarge) {
		ss.srv.cfg.Metrics.InflateTooLarge()
	}
}
