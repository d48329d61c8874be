// Package cluster decides where a room lives and carries room operations
// there. The server layer talks to a Router; a single node is a cluster of
// one, served by the same interface (Local), never a special case in the
// layers above.
//
// It knows nothing of WebSocket sessions, SSE or HTTP handlers: it sees
// rooms, subscribers and requests.
package cluster
