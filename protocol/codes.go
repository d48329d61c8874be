package protocol

import (
	"fmt"
	"strconv"
)

// Code is a wire code carried by err, left and bye frames, by HTTP API errors,
// and (as 4000+Code) by WebSocket close frames.
//
// Codes below 500 mean the client may reconnect, with backoff; 500 and above
// are terminal: the client must not reconnect without user action.
type Code uint16

// The code table of protocol v1.
const (
	CodeNormal        Code = 0 // closed on purpose
	CodeShutdown      Code = 1 // node stopping or draining: reconnect now (any node)
	CodeSlowConsumer  Code = 2 // outbound queue overflowed: reconnect and resume
	CodeNoPong        Code = 3 // liveness timeout
	CodeTokenExpired  Code = 4 // reconnect with a fresh token
	CodeRateLimited   Code = 5 // flooding: reconnect after backoff
	CodeUnavailable   Code = 6 // room owner moving or unreachable: retry
	CodeOverloaded    Code = 7 // room or node at capacity: retry later
	CodeInternal      Code = 8 // server fault: retry
	CodeRoomMoved     Code = 9 // the room moved owner: rejoin
	CodeBadRequest    Code = 100
	CodeUnknownType   Code = 101
	CodeInvalidRoom   Code = 102
	CodeTooLarge      Code = 103
	CodeNotJoined     Code = 104
	CodeAlreadyJoined Code = 105
	CodeRoomFull      Code = 106
	CodeForbidden     Code = 107
	CodeLimit         Code = 108
	CodeNotFound      Code = 109 // HTTP API: no such room or key
	CodeDenied        Code = 110 // the application's backend refused (join or publish hook)
	CodeBadProtocol   Code = 500
	CodeUnauthorized  Code = 501
	CodeUnsupported   Code = 502
	CodeKicked        Code = 503
	CodeTooManyConns  Code = 504
)

var codeNames = map[Code]string{
	CodeNormal:        "normal",
	CodeShutdown:      "shutdown",
	CodeSlowConsumer:  "slow_consumer",
	CodeNoPong:        "no_pong",
	CodeTokenExpired:  "token_expired",
	CodeRateLimited:   "rate_limited",
	CodeUnavailable:   "unavailable",
	CodeOverloaded:    "overloaded",
	CodeInternal:      "internal",
	CodeRoomMoved:     "room_moved",
	CodeBadRequest:    "bad_request",
	CodeUnknownType:   "unknown_type",
	CodeInvalidRoom:   "invalid_room",
	CodeTooLarge:      "too_large",
	CodeNotJoined:     "not_joined",
	CodeAlreadyJoined: "already_joined",
	CodeRoomFull:      "room_full",
	CodeForbidden:     "forbidden",
	CodeLimit:         "limit",
	CodeNotFound:      "not_found",
	CodeDenied:        "denied",
	CodeBadProtocol:   "bad_protocol",
	CodeUnauthorized:  "unauthorized",
	CodeUnsupported:   "unsupported_version",
	CodeKicked:        "kicked",
	CodeTooManyConns:  "too_many_connections",
}

// Codes lists every defined code in ascending order.
func Codes() []Code {
	return []Code{
		CodeNormal, CodeShutdown, CodeSlowConsumer, CodeNoPong, CodeTokenExpired,
		CodeRateLimited, CodeUnavailable, CodeOverloaded, CodeInternal, CodeRoomMoved,
		CodeBadRequest, CodeUnknownType, CodeInvalidRoom, CodeTooLarge, CodeNotJoined,
		CodeAlreadyJoined, CodeRoomFull, CodeForbidden, CodeLimit, CodeNotFound,
		CodeDenied, CodeBadProtocol, CodeUnauthorized, CodeUnsupported, CodeKicked, CodeTooManyConns,
	}
}

// String returns the code's wire name, e.g. "slow_consumer".
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "code_" + strconv.Itoa(int(c))
}

// Reconnect reports whether a client may reconnect after this code.
func (c Code) Reconnect() bool { return c < 500 }

// CloseCode is the WebSocket close code that goes with a bye of this code.
func (c Code) CloseCode() int { return 4000 + int(c) }

// CodeFromClose maps a WebSocket close code back to a Code; ok is false for
// close codes outside 4000-4999.
func CodeFromClose(closeCode int) (c Code, ok bool) {
	if closeCode < 4000 || closeCode > 4999 {
		return 0, false
	}
	return Code(closeCode - 4000), true
}

// HTTPStatus is the HTTP status the HTTP API answers with for this code.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadRequest, CodeUnknownType, CodeInvalidRoom, CodeBadProtocol, CodeUnsupported:
		return 400
	case CodeUnauthorized, CodeTokenExpired:
		return 401
	case CodeForbidden, CodeKicked, CodeDenied:
		return 403
	case CodeNotFound, CodeNotJoined:
		return 404
	case CodeAlreadyJoined:
		return 409
	case CodeTooLarge:
		return 413
	case CodeRateLimited, CodeTooManyConns, CodeLimit, CodeRoomFull:
		return 429
	case CodeUnavailable, CodeShutdown, CodeRoomMoved, CodeOverloaded:
		return 503
	default:
		return 500
	}
}

// Error is an error that carries a wire code. Internal errors that must reach
// a client are converted to an *Error at the edge.
type Error struct {
	Code Code
	Msg  string
}

// NewError builds an *Error.
func NewError(code Code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Msg }
