// Package wsframe is RFC 6455 framing in one place: the opcodes by name,
// frame headers (a server's unmasked, a client's masked), the bodies of
// control frames, the recognition of a complete pong, and permessage-deflate
// (RFC 7692) without context takeover: the negotiation of the extension,
// compressed reads bounded after inflation, and message bodies built from
// pieces compressed once for many connections.
//
// roomd owns the frames on its sockets, in both directions: a WebSocket
// session reads with Reader and writes frames built here through its write
// turn (internal/netio), and so does a peer link, whose dialing side makes
// its opening handshake with ClientHandshake. gorilla/websocket only
// answers the upgrade (origin check, subprotocol, the 101 response); the
// connection is taken from it before any frame is read or written, so that
// no two parties own one socket: gorilla's reader would otherwise write
// close frames of its own, and its writer could not interleave with a
// flusher's non-blocking writes without a frame cut in two. Why not
// gorilla for everything: its write path copies every message into its own
// buffer and blocks, where the flushers write the shared frame bytes with
// one non-blocking writev; and its read path sits deep in the stack that an
// idle connection would keep (server/idle.go).
//
// It knows nothing of sessions, rooms or the network.
package wsframe
