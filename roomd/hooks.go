package roomd

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/roomd/roomd/hooks"
)

// The hooks' requests and answers (docs/PROTOCOL.md, "Hooks"; JSON fields
// hold JSON, as over HTTP).
type (
	ConnectRequest = hooks.ConnectRequest
	ConnectResult  = hooks.ConnectResult
	JoinRequest    = hooks.JoinRequest
	JoinResult     = hooks.JoinResult
	PublishRequest = hooks.PublishRequest
	PublishResult  = hooks.PublishResult
	PublishedEvent = hooks.PublishedEvent
	RoomEvent      = hooks.RoomEvent
	// Policy is what a hook that decides (connect, join, publish) does
	// when its function returns an error: hooks.PolicyDeny (the zero
	// value), hooks.PolicyAllow or hooks.PolicyAllowAndLog.
	Policy = hooks.Policy
)

// Hooks are in-process hook functions: the node calls them where a
// standalone node posts to the application's backend, with the same
// requests, answers, timeouts, failure policy, circuit breakers and, for
// Published, Occupied and Vacated, the same ordered delivery with retries
// and a dead-letter store. A nil function is a hook that is off.
//
// A function that decides (Connect, Join, Publish) answers with Allow
// false to refuse (err 110 denied on a join or publish, bye 501 on a
// connection); an error is a failure, which Policy settles. A function
// that reports (Published, Occupied, Vacated) returns nil to acknowledge
// the event, an error to have it retried later, in order.
//
// Functions are called concurrently, from the goroutines serving the
// clients; a slow one slows the clients it answers, up to Timeout.
type Hooks struct {
	Connect   func(ctx context.Context, req *ConnectRequest) (*ConnectResult, error)
	Join      func(ctx context.Context, req *JoinRequest) (*JoinResult, error)
	Publish   func(ctx context.Context, req *PublishRequest) (*PublishResult, error)
	Published func(ctx context.Context, ev *PublishedEvent) error
	Occupied  func(ctx context.Context, ev *RoomEvent) error
	Vacated   func(ctx context.Context, ev *RoomEvent) error

	// Namespaces limits the room hooks (all but Connect) to the rooms of
	// these namespaces (the part of a room name before its first ':').
	// Nil means every room.
	Namespaces []string
	// Timeout bounds one call: its ctx ends then, and the call counts as
	// failed. Zero means 2 s.
	Timeout time.Duration
	// Policy applies when Connect, Join or Publish fails. Zero means
	// hooks.PolicyDeny.
	Policy Policy
	// ConnectHeaders are the upgrade request's headers passed to Connect
	// (besides its cookies). Nil means none.
	ConnectHeaders []string
}

// config is the hooks.Config that calls h's functions.
func (h *Hooks) config(logger *slog.Logger) hooks.Config {
	ns := hooks.Namespace{Timeout: h.Timeout, JoinPolicy: h.Policy, PublishPolicy: h.Policy}
	for _, on := range []struct {
		name hooks.Name
		set  bool
	}{
		{hooks.Join, h.Join != nil},
		{hooks.Publish, h.Publish != nil},
		{hooks.Published, h.Published != nil},
		{hooks.Occupied, h.Occupied != nil},
		{hooks.Vacated, h.Vacated != nil},
	} {
		if on.set {
			ns.Hooks = append(ns.Hooks, on.name)
		}
	}
	c := hooks.Config{
		Backend:        funcs{h},
		ConnectHook:    h.Connect != nil,
		ConnectTimeout: h.Timeout,
		ConnectPolicy:  h.Policy,
		ConnectHeaders: h.ConnectHeaders,
		Logger:         logger,
	}
	if h.Namespaces == nil {
		c.Default = ns
		return c
	}
	c.Default = hooks.Namespace{}
	c.Namespaces = make(map[string]hooks.Namespace, len(h.Namespaces))
	for _, name := range h.Namespaces {
		c.Namespaces[name] = ns
	}
	return c
}

// errNoHook answers a call of a hook whose function is nil; hooks.Hooks
// does not make one (Hooks.config turns only the set ones on).
var errNoHook = errors.New("roomd: hook function not set")

// funcs is the hooks.Backend of a Hooks.
type funcs struct{ h *Hooks }

var _ hooks.Backend = funcs{}

func (f funcs) Connect(ctx context.Context, req *ConnectRequest) (*ConnectResult, error) {
	if f.h.Connect == nil {
		return nil, errNoHook
	}
	return f.h.Connect(ctx, req)
}

func (f funcs) Join(ctx context.Context, req *JoinRequest) (*JoinResult, error) {
	if f.h.Join == nil {
		return nil, errNoHook
	}
	return f.h.Join(ctx, req)
}

func (f funcs) Publish(ctx context.Context, req *PublishRequest) (*PublishResult, error) {
	if f.h.Publish == nil {
		return nil, errNoHook
	}
	return f.h.Publish(ctx, req)
}

func (f funcs) Published(ctx context.Context, ev *PublishedEvent) error {
	if f.h.Published == nil {
		return errNoHook
	}
	return f.h.Published(ctx, ev)
}

func (f funcs) Occupied(ctx context.Context, ev *RoomEvent) error {
	if f.h.Occupied == nil {
		return errNoHook
	}
	return f.h.Occupied(ctx, ev)
}

func (f funcs) Vacated(ctx context.Context, ev *RoomEvent) error {
	if f.h.Vacated == nil {
		return errNoHook
	}
	return f.h.Vacated(ctx, ev)
}
