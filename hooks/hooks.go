package hooks

import (
	"context"
	"encoding/json"
	"errors"
)

// Name names a hook. It is the "hook" field of every request body and the
// label of its metrics.
type Name string

// The hooks.
const (
	Connect   Name = "connect"
	Join      Name = "join"
	Publish   Name = "publish"
	Published Name = "published"
	Occupied  Name = "occupied"
	Vacated   Name = "vacated"
)

// Names lists every hook, in the order the docs give them.
var Names = []Name{Connect, Join, Publish, Published, Occupied, Vacated}

// Valid reports whether n names a hook.
func (n Name) Valid() bool {
	for _, h := range Names {
		if h == n {
			return true
		}
	}
	return false
}

// Backend is what a hook calls. HTTPBackend implements it over HTTP; a Go
// program that embeds roomd may implement it with functions. A method
// returns an error when the backend could not answer (down, timed out,
// answered garbage): the hook's failure policy then decides. A refusal is
// an answer, not an error (Allow false).
//
// Published, Occupied and Vacated report what happened; returning nil
// acknowledges the event, an error has it retried, in order, later.
type Backend interface {
	Connect(ctx context.Context, req *ConnectRequest) (*ConnectResult, error)
	Join(ctx context.Context, req *JoinRequest) (*JoinResult, error)
	Publish(ctx context.Context, req *PublishRequest) (*PublishResult, error)
	Published(ctx context.Context, ev *PublishedEvent) error
	Occupied(ctx context.Context, ev *RoomEvent) error
	Vacated(ctx context.Context, ev *RoomEvent) error
}

// ConnectRequest asks whether a connection may open, and as whom.
type ConnectRequest struct {
	Hook Name `json:"hook"` // "connect"
	// Conn is the connection's id (as in welcome).
	Conn string `json:"conn"`
	// Token is the hello's tok, else the upgrade's ?token or Bearer header;
	// "" when none. roomd does not verify it when a connect hook is on.
	Token string `json:"token,omitempty"`
	// Addr is the client's address (after trusted proxies).
	Addr string `json:"addr,omitempty"`
	// Cookies are the upgrade request's cookies, by name.
	Cookies map[string]string `json:"cookies,omitempty"`
	// Headers are the upgrade request's headers named in the hook's
	// forwarded headers, by canonical name.
	Headers map[string]string `json:"headers,omitempty"`
}

// ConnectResult is the backend's answer to a ConnectRequest.
type ConnectResult struct {
	// Allow opens the connection; false closes it with bye 501
	// unauthorized.
	Allow bool `json:"allow"`
	// User is the connection's user id ("" is anonymous).
	User string `json:"user,omitempty"`
	// Info is public info about the user, as a token's "info" claim.
	Info json.RawMessage `json:"info,omitempty"`
	// Rooms grants permissions by room pattern, as a token's "rooms" claim
	// ({"chat:*": ["join", "pub", "pres"]}).
	Rooms map[string][]string `json:"rooms,omitempty"`
	// Expires is when the connection ends (unix seconds); 0 is never.
	Expires int64 `json:"exp,omitempty"`
	// Reason says why a connection was refused, for the logs.
	Reason string `json:"reason,omitempty"`
}

// JoinRequest asks whether a member may join a room.
type JoinRequest struct {
	Hook Name   `json:"hook"` // "join"
	Room string `json:"room"`
	Conn string `json:"conn"`
	User string `json:"user,omitempty"`
	// Info is the user's info (token or connect hook), JSON.
	Info json.RawMessage `json:"info,omitempty"`
	// Presence is the join's "p", JSON; absent when none.
	Presence json.RawMessage `json:"presence,omitempty"`
}

// JoinResult is the backend's answer to a JoinRequest.
type JoinResult struct {
	// Allow lets the member in; false answers the join with err 110
	// denied.
	Allow bool `json:"allow"`
	// Presence, when present, replaces the member's presence data.
	Presence json.RawMessage `json:"presence,omitempty"`
	// Reason is the message of the err frame of a denial.
	Reason string `json:"reason,omitempty"`
}

// PublishRequest asks whether a durable message may be committed.
type PublishRequest struct {
	Hook Name   `json:"hook"` // "publish"
	Room string `json:"room"`
	Conn string `json:"conn,omitempty"` // "" when written through the HTTP API
	User string `json:"user,omitempty"`
	// API marks a message written through the HTTP API.
	API  bool            `json:"api,omitempty"`
	Data json.RawMessage `json:"data"`
}

// PublishResult is the backend's answer to a PublishRequest.
type PublishResult struct {
	// Allow commits the message; false answers it with err 110 denied
	// (HTTP 403 on the API).
	Allow bool `json:"allow"`
	// Data, when present, replaces the payload that is committed.
	Data json.RawMessage `json:"data,omitempty"`
	// Reason is the message of the err frame of a denial.
	Reason string `json:"reason,omitempty"`
}

// PublishedEvent reports a committed message. Events of one room arrive in
// seq order, at least once: a redelivery (after a failure or an owner
// change) carries the same room, epoch and seq.
type PublishedEvent struct {
	Hook  Name            `json:"hook"` // "published"
	Room  string          `json:"room"`
	Epoch string          `json:"epoch"`
	Seq   uint64          `json:"seq"`
	User  string          `json:"user,omitempty"`
	Conn  string          `json:"conn,omitempty"`
	TS    int64           `json:"ts"` // unix ms of the commit
	Data  json.RawMessage `json:"data"`
}

// RoomEvent reports that a room became occupied (its first member joined)
// or vacated (its last member left). ID identifies the transition: the
// same transition redelivered (after a failure or an owner change) has the
// same ID, so a backend can drop the copy.
type RoomEvent struct {
	Hook Name   `json:"hook"` // "occupied" or "vacated"
	Room string `json:"room"`
	// Epoch is the room's epoch, N the transition's number within it
	// (1, 2, ...: odd occupied, even vacated).
	Epoch string `json:"epoch"`
	N     uint64 `json:"n"`
	ID    string `json:"id"` // Epoch + "/" + N
	TS    int64  `json:"ts"` // unix ms of the transition
}

// ErrFailed wraps a backend failure (transport, timeout, HTTP status,
// undecodable answer, open breaker).
var ErrFailed = errors.New("hooks: backend failed")

// ErrBreakerOpen is the failure of a call refused by an open breaker.
var ErrBreakerOpen = errors.New("hooks: circuit breaker open")
