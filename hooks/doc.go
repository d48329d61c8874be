// Package hooks is how roomd asks an application's backend to take part:
// before a connection is accepted (connect), before a member joins (join),
// before a message is committed (publish), after it is committed
// (published), and when a room gains its first member or loses its last
// (occupied, vacated).
//
// The server calls a *Hooks. It applies each namespace's settings (which
// hooks are on, their timeout and failure policy), a circuit breaker per
// hook, metrics, and, for the hooks that report what happened (published,
// occupied, vacated), ordered delivery with retries and a bounded
// dead-letter store. What it calls is a Backend: HTTPBackend posts signed
// JSON to the backend's URL (docs/PROTOCOL.md, "Hooks"); a program that
// embeds roomd may implement Backend with plain Go functions instead
// (Funcs).
//
// The package knows nothing of sockets, rooms' internals or the cluster: the
// server hands it requests and the room owner hands it committed events.
package hooks
