// Package netio is everything between "these bytes are due on this socket"
// and the kernel, for WebSocket sessions, raw SSE streams and peer links:
//
//   - the write turn (Turn): who may write on a socket now, the rest of a
//     piece the socket took in part, the write deadline, and the choice
//     between a flusher's non-blocking write and a writer goroutine's
//     blocking one;
//   - flushers (Flushers): a few goroutines, only while there is work, that
//     make the non-blocking writes of many sockets;
//   - direct writes: one writev on a non-blocking socket, through
//     syscall.RawConn, so a closed (and possibly reused) descriptor is never
//     written;
//   - the shallow reads of an idle WebSocket connection: waiting for bytes
//     without entering a frame read, and taking a client's pongs;
//   - the Parker: idle sockets in an epoll set, with no goroutine, and the
//     Release of their memory once many parked;
//   - TLS (tls.go): the TCP socket under a tls.Conn parks once crypto/tls
//     holds nothing more (DrainTLS); small writes go through the tls.Conn
//     from a flusher when the socket has room, the rest from writer
//     goroutines that Writers lend.
//
// A Turn's owner (Source) decides what is due and in what order, and keeps
// its own lock; the Turn's state is guarded by that lock, and what a piece
// is built from belongs to whoever holds the turn (a flusher, or the turn's
// writer goroutine). Lock order: the source's lock, then Flushers.mu or
// Parker.mu; the parker calls its Parkees holding neither. Nothing here
// calls into a room.
//
// It lives under internal/ rather than server/internal/ because peer links
// (cluster) write through a Turn too.
//
// It knows nothing of sessions, rooms, SSE or the protocol; the only
// framing it knows is wsframe's recognition of a client's pong.
package netio
