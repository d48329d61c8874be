package netio

// Parkee is what waits in the Parker: a WebSocket session, or a raw SSE
// stream. Its methods run on the parker's goroutine and must not block.
type Parkee interface {
	// ParkEvent: the socket has bytes, or the peer is gone.
	ParkEvent()
	// ParkStopped: the parker stopped while this one waited.
	ParkStopped()
}
