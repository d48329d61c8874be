package roomd

import (
	"context"
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
// and a dead-letter store (sized by the settings' hooks.* keys: breakers,
// retries, dead letters, queue). A nil function is a hook that is off.
// When set, they replace the HTTP hooks of the settings (their URLs,
// hook lists and policies).
//
// A function that decides (Connect, Join, Publish) answers with Allow
// false to refuse (err 110 denied on a join or publish, bye 501 on a
// connection); an error is a failure, which Policy settles. A function
// that reports (Published, Occupied, Vacated) returns nil to acknowledge
// the event, an error to have it retried later, in order.
//
// Functions are called concurrently, from the goroutines serving the
// clients; a slow one slows the clients it answers, up to Timeout. In a
// cluster, Connect, Join and Publish run on the node the client is
// connected to, and Published, Occupied and Vacated on the room's owner:
// every instance of the program must set the same functions.
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

// config is the hooks.Config that calls h's functions, over base (the
// settings' hooks: their breaker, retry and dead-letter values apply; their
// URLs do not).
func (h *Hooks) config(base hooks.Config) hooks.Config {
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
	c := base
	c.Backend = hooks.Funcs{
		OnConnect: h.Connect, OnJoin: h.Join, OnPublish: h.Publish,
		OnPublished: h.Published, OnOccupied: h.Occupied, OnVacated: h.Vacated,
	}
	c.Secret, c.ConnectURL, c.Client = nil, "", nil
	c.ConnectHook = h.Connect != nil
	c.ConnectTimeout = h.Timeout
	c.ConnectPolicy = h.Policy
	c.ConnectHeaders = h.ConnectHeaders
	c.Default, c.Namespaces = ns, nil
	if h.Namespaces == nil {
		return c
	}
	c.Default = hooks.Namespace{}
	c.Namespaces = make(map[string]hooks.Namespace, len(h.Namespaces))
	for _, name := range h.Namespaces {
		c.Namespaces[name] = ns
	}
	return c
}
