// Package room is roomd's engine: a room's log, history, presence, state and
// subscribers.
//
// A room is a small state machine with one writer (its lock, held briefly). It
// assigns gapless seqs within an epoch, keeps bounded history, presence and
// state, dedupes idempotency keys, and hands each event to its subscribers
// through a non-blocking Deliver that never waits on anyone.
//
// The package knows nothing of sockets, HTTP or the network: a Subscriber may
// be a WebSocket session, an SSE feed or a peer node, and the package does not
// care which.
package room
