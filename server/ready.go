package server

import (
	"context"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// A node that is not ready for rooms (Config.Ready: its cluster has not
// formed) answers /readyz with 503 and the reason, and every room op with
// unavailable (6) at once, so that clients retry, here later or elsewhere,
// rather than wait on a room no node serves yet.

// readyRouter is the router a server with Config.Ready uses: the ops that
// reach a room fail with unavailable while Ready returns an error.
type readyRouter struct {
	cluster.Router
	ready func() error
}

var _ cluster.Router = readyRouter{}

// notReady returns the unavailable error while the node is not ready.
func (r readyRouter) notReady() error {
	if err := r.ready(); err != nil {
		return protocol.NewError(protocol.CodeUnavailable, "this node serves no room yet: "+err.Error())
	}
	return nil
}

func (r readyRouter) Join(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error {
	if err := r.notReady(); err != nil {
		return err
	}
	return r.Router.Join(ctx, req, sub)
}

func (r readyRouter) Publish(ctx context.Context, req room.PublishRequest) (uint64, error) {
	if err := r.notReady(); err != nil {
		return 0, err
	}
	return r.Router.Publish(ctx, req)
}

func (r readyRouter) SetState(ctx context.Context, req room.SetRequest) (uint64, error) {
	if err := r.notReady(); err != nil {
		return 0, err
	}
	return r.Router.SetState(ctx, req)
}

func (r readyRouter) UpdatePresence(ctx context.Context, req room.PresenceRequest) error {
	if err := r.notReady(); err != nil {
		return err
	}
	return r.Router.UpdatePresence(ctx, req)
}

func (r readyRouter) Info(ctx context.Context, name string) (cluster.RoomInfo, bool, error) {
	if err := r.notReady(); err != nil {
		return cluster.RoomInfo{}, false, err
	}
	return r.Router.Info(ctx, name)
}

func (r readyRouter) Presence(ctx context.Context, name string) ([]protocol.Member, bool, error) {
	if err := r.notReady(); err != nil {
		return nil, false, err
	}
	return r.Router.Presence(ctx, name)
}

func (r readyRouter) State(ctx context.Context, name string) (map[string]protocol.Raw, uint64, bool, error) {
	if err := r.notReady(); err != nil {
		return nil, 0, false, err
	}
	return r.Router.State(ctx, name)
}

func (r readyRouter) History(ctx context.Context, name string, since uint64, limit int) (string, []*room.Event, bool, error) {
	if err := r.notReady(); err != nil {
		return "", nil, false, err
	}
	return r.Router.History(ctx, name, since, limit)
}

func (r readyRouter) Kick(ctx context.Context, name, user string, code protocol.Code, msg string) (int, error) {
	if err := r.notReady(); err != nil {
		return 0, err
	}
	return r.Router.Kick(ctx, name, user, code, msg)
}
