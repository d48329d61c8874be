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
//     outside gorilla's read path, and taking a client's pongs.
//
// A Turn's owner (Source) decides what is due and in what order, and keeps
// its own lock; the Turn's state is guarded by that lock. Lock order: the
// source's lock, then Flushers.mu; nothing here calls into a room.
//
// It knows nothing of sessions, rooms, SSE or the protocol.
package netio
