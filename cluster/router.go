package cluster

import (
	"context"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// Router carries room operations to the node that owns each room. Errors are
// *protocol.Error values with the wire code the client should see.
type Router interface {
	// Join subscribes sub to a room. The answer reaches sub as a KindJoined
	// event before any live event of the room.
	Join(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error
	// Leave removes sub from a room at once (an explicit leave).
	Leave(ctx context.Context, room string, sub room.Subscriber)
	// Drop removes sub from a room after its connection was lost: the
	// presence entry lingers for the grace period.
	Drop(ctx context.Context, room string, sub room.Subscriber)
	Publish(ctx context.Context, req room.PublishRequest) (seq uint64, err error)
	SetState(ctx context.Context, req room.SetRequest) (seq uint64, err error)
	UpdatePresence(ctx context.Context, req room.PresenceRequest) error
	// Settings returns the effective namespace settings for a room name.
	Settings(room string) room.Namespace

	// Read and admin operations, for the HTTP API. ok is false when the
	// room is not live.
	Info(ctx context.Context, room string) (info RoomInfo, ok bool, err error)
	Presence(ctx context.Context, room string) (members []protocol.Member, ok bool, err error)
	State(ctx context.Context, room string) (state map[string]protocol.Raw, seq uint64, ok bool, err error)
	// History returns the durable events after seq since, at most limit
	// (0: all held), in seq order.
	History(ctx context.Context, room string, since uint64, limit int) (epoch string, events []*room.Event, ok bool, err error)
	// Kick removes every connection of user from room; each gets left with
	// code. It returns how many were removed.
	Kick(ctx context.Context, room, user string, code protocol.Code, msg string) (int, error)
	// Rooms lists live rooms whose name starts with prefix, cluster-wide.
	Rooms(ctx context.Context, prefix string) ([]RoomInfo, error)
	// Members describes the cluster's nodes.
	Members(ctx context.Context) []NodeInfo
}

// RoomInfo describes a live room and where it lives.
type RoomInfo struct {
	room.Info
	Owner string // node name of the owner
}

// NodeInfo describes one node of the cluster.
type NodeInfo struct {
	Name  string `json:"name"`
	Addr  string `json:"addr,omitempty"` // HTTP address others reach it on
	State string `json:"state"`          // alive, suspect, dead, left
	Rooms int    `json:"rooms"`          // rooms it owns
	Self  bool   `json:"self"`
}

// Local is the Router of a single node: every room is owned here.
type Local struct {
	rooms *room.Manager
	// Node is this node's name, reported as every room's owner.
	Node string
	// Addr is this node's advertised HTTP address, if known.
	Addr string
}

var _ Router = (*Local)(nil)

// NewLocal returns a Router over rooms, owned by the node named node.
func NewLocal(rooms *room.Manager, node string) *Local { return &Local{rooms: rooms, Node: node} }

func (l *Local) Join(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error {
	if err := ctx.Err(); err != nil {
		return protocol.NewError(protocol.CodeUnavailable, err.Error())
	}
	return l.rooms.Join(req, sub)
}

func (l *Local) Leave(_ context.Context, name string, sub room.Subscriber) {
	l.rooms.Leave(name, sub)
}

func (l *Local) Drop(_ context.Context, name string, sub room.Subscriber) {
	l.rooms.Drop(name, sub)
}

func (l *Local) Publish(_ context.Context, req room.PublishRequest) (uint64, error) {
	return l.rooms.Publish(req)
}

func (l *Local) SetState(_ context.Context, req room.SetRequest) (uint64, error) {
	return l.rooms.SetState(req)
}

func (l *Local) UpdatePresence(_ context.Context, req room.PresenceRequest) error {
	return l.rooms.UpdatePresence(req)
}

func (l *Local) Settings(name string) room.Namespace { return l.rooms.Settings(name) }

func (l *Local) Info(_ context.Context, name string) (RoomInfo, bool, error) {
	info, ok := l.rooms.Info(name)
	return RoomInfo{Info: info, Owner: l.Node}, ok, nil
}

func (l *Local) Presence(_ context.Context, name string) ([]protocol.Member, bool, error) {
	m, ok := l.rooms.Presence(name)
	return m, ok, nil
}

func (l *Local) State(_ context.Context, name string) (map[string]protocol.Raw, uint64, bool, error) {
	st, seq, ok := l.rooms.State(name)
	return st, seq, ok, nil
}

func (l *Local) History(_ context.Context, name string, since uint64, limit int) (string, []*room.Event, bool, error) {
	e, ev, ok := l.rooms.History(name, since, limit)
	return e, ev, ok, nil
}

func (l *Local) Kick(_ context.Context, name, user string, code protocol.Code, msg string) (int, error) {
	return l.rooms.Kick(name, user, code, msg), nil
}

func (l *Local) Rooms(_ context.Context, prefix string) ([]RoomInfo, error) {
	infos := l.rooms.Rooms(prefix)
	out := make([]RoomInfo, len(infos))
	for i, info := range infos {
		out[i] = RoomInfo{Info: info, Owner: l.Node}
	}
	return out, nil
}

func (l *Local) Members(context.Context) []NodeInfo {
	st := l.rooms.Stats()
	return []NodeInfo{{Name: l.Node, Addr: l.Addr, State: "alive", Rooms: st.Rooms, Self: true}}
}
