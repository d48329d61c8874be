// Package wsframe is RFC 6455 framing in one place: the opcodes by name,
// frame headers (a server's unmasked, a client's masked), the bodies of
// control frames, and the recognition of a complete pong.
//
// roomd keeps gorilla/websocket for the upgrade handshake and for reading
// messages; every frame roomd writes is built here and written through the
// connection's write turn (internal/netio), so that a flusher's
// non-blocking writes, a writer goroutine's blocking ones and control frames
// never interleave inside a frame. gorilla never writes on a socket whose
// writes are roomd's: its ping and close handlers are replaced.
//
// It knows nothing of sessions, rooms or the network.
package wsframe
