// Package auth verifies client tokens and answers permission questions for the
// server layer.
//
// A client proves who it is with a JWT (see docs/PROTOCOL.md §5): signed with
// a shared secret (HS256), an RSA key (RS256) or a P-256 EC key (ES256). A
// [Verifier] checks the token against the keys of its [Config] and turns its
// claims into an [Identity]: the user id (`sub`), the opaque `info` claim
// re-encoded as msgpack, the expiry, and a list of [Grant]s, each a room
// pattern with a [Perm] bitmask. [Identity.Can] answers "may this identity do
// that in this room" without allocating, so it can run on every operation.
//
// With no key configured at all the Verifier is in dev mode: every token, and
// no token, yields an anonymous Identity with every permission. The server is
// expected to warn loudly about it.
//
// Failures are reported with sentinel errors ([ErrMissing], [ErrMalformed],
// [ErrExpired], [ErrSignature], [ErrAlgorithm], [ErrClaims]) wrapped with %w;
// [Reason] maps them to short labels for metrics. No error message ever holds
// the token, a secret or key material.
//
// The package also checks API keys for the HTTP API ([APIKeys]) and finds a
// token in an HTTP request ([TokenFromRequest]). [Mint] issues HS256 tokens
// for the `roomd token` command and for tests.
//
// auth knows nothing of sockets, rooms, clusters or HTTP handlers: it does not
// decide which code a failure maps to on the wire, nor what happens when a
// token expires on a live connection. Room names are plain strings here;
// validating them is the caller's job.
package auth
