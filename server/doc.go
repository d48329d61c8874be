// Package server is roomd's edge: WebSocket sessions, SSE feeds, the HTTP API,
// authentication and the web assets. It turns sockets and HTTP requests into
// calls on a cluster.Router and turns room events back into bytes on the wire.
//
// It knows nothing of where a room lives: that is the router's business.
package server
