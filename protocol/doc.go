// Package protocol is roomd's wire contract in code: the frame types of
// protocol v1, the table of codes, the msgpack codec for messages that carry
// several concatenated frames, payload validation, and the transcoding of
// msgpack payloads to JSON for SSE and the HTTP API.
//
// It knows nothing of rooms, sockets or the network. Everything here is pure
// and safe for concurrent use; the decoders are fuzzed.
package protocol
