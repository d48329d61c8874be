package hooks

import "context"

// Funcs is a Backend of Go functions, for a program that embeds roomd
// (Config.Backend). A nil function allows (OnConnect: as without the hook,
// the token decides; OnJoin, OnPublish: as asked) or acknowledges (the
// others). A function's error is a failure: the hook's policy, or its
// retries, apply as over HTTP.
type Funcs struct {
	OnConnect   func(ctx context.Context, req *ConnectRequest) (*ConnectResult, error)
	OnJoin      func(ctx context.Context, req *JoinRequest) (*JoinResult, error)
	OnPublish   func(ctx context.Context, req *PublishRequest) (*PublishResult, error)
	OnPublished func(ctx context.Context, ev *PublishedEvent) error
	OnOccupied  func(ctx context.Context, ev *RoomEvent) error
	OnVacated   func(ctx context.Context, ev *RoomEvent) error
}

var _ Backend = Funcs{}

// Connect implements Backend.
func (f Funcs) Connect(ctx context.Context, req *ConnectRequest) (*ConnectResult, error) {
	if f.OnConnect == nil {
		return nil, nil // no answer: the token decides
	}
	req.Hook = Connect
	return f.OnConnect(ctx, req)
}

// Join implements Backend.
func (f Funcs) Join(ctx context.Context, req *JoinRequest) (*JoinResult, error) {
	if f.OnJoin == nil {
		return &JoinResult{Allow: true}, nil
	}
	req.Hook = Join
	return f.OnJoin(ctx, req)
}

// Publish implements Backend.
func (f Funcs) Publish(ctx context.Context, req *PublishRequest) (*PublishResult, error) {
	if f.OnPublish == nil {
		return &PublishResult{Allow: true}, nil
	}
	req.Hook = Publish
	return f.OnPublish(ctx, req)
}

// Published implements Backend.
func (f Funcs) Published(ctx context.Context, ev *PublishedEvent) error {
	if f.OnPublished == nil {
		return nil
	}
	return f.OnPublished(ctx, ev)
}

// Occupied implements Backend.
func (f Funcs) Occupied(ctx context.Context, ev *RoomEvent) error {
	if f.OnOccupied == nil {
		return nil
	}
	return f.OnOccupied(ctx, ev)
}

// Vacated implements Backend.
func (f Funcs) Vacated(ctx context.Context, ev *RoomEvent) error {
	if f.OnVacated == nil {
		return nil
	}
	return f.OnVacated(ctx, ev)
}
