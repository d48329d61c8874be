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
	State string `json:"state"`          // alive, leaving or dead
	Rooms int    `json:"rooms"`          // rooms it owns
	// Partitions is how many partitions it leads, as this node knows.
	Partitions int  `json:"partitions"`
	Self       bool `json:"self"`
	// Led and Followed count the groups it leads and follows (known for
	// the node answering only).
	Led      int `json:"groups_led,omitempty"`
	Followed int `json:"groups_followed,omitempty"`
	Asleep   int `json:"groups_asleep,omitempty"` // quiesced: idle, costing nothing
	// ReplicaLag is the most log entries a replica of a group it leads is
	// behind its leader (known for the node answering only).
	ReplicaLag uint64 `json:"replica_lag,omitempty"`
	// Settled is, for the node answering, whether every partition has a
	// leader it knows and every group it leads has its target replicas.
	Settled bool `json:"settled,omitempty"`
}
