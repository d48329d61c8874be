// Package cluster decides where a room lives and carries room operations
// there. The server layer talks to a Router; a single node is a cluster of
// one, served by the same interface, never a special case in the layers
// above.
//
// Every partition of rooms is a raft group (go.etcd.io/raft/v3) over its
// replicas; the group's leader serves the partition's rooms, and durable
// changes are room.Commands proposed to the group and applied on every
// replica. Membership is memberlist's; placement picks each partition's
// replicas by rendezvous hashing; peer links carry room ops, events and raft
// messages between nodes.
//
// It knows nothing of WebSocket sessions, SSE or client HTTP: it sees rooms,
// subscribers and requests. Its one HTTP handler is PeerHandler, the upgrade
// of a peer link.
package cluster
