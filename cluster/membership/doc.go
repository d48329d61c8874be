// Package membership is a node's view of the cluster, kept by
// hashicorp/memberlist: who is there, alive, and serving. It does failure
// detection and carries each node's metadata (its HTTP address for peer
// links, its incarnation, its state and the cluster ID it carries); room
// traffic never goes through it.
//
// Beyond memberlist it adds: seeds given as DNS names and joined again
// with backoff until the node has company (rejoin.go), the refusal of nodes
// that carry another cluster's ID (identity.go), an OnChange callback
// coalesced onto one goroutine, and Faults, which cut a node's gossip off
// from chosen peers in tests of partitions (fault.go).
//
// It knows nothing of rooms, partitions, raft or links: the cluster package
// reads Nodes and Serving, and decides placement (cluster/placement) and
// formation from them.
package membership
