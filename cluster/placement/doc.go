// Package placement says where a room lives: its partition (FNV-1a 64 of
// the name, modulo the partition count) and, for each partition, the owner
// and replicas chosen by rendezvous (highest random weight) hashing over the
// serving members. A Table is a pure function of (members, partitions,
// replicas), so every node with the same view of the serving members
// computes the same one.
//
// It knows nothing of membership, raft or links: it takes member names and
// returns member names. The cluster package feeds it the serving members
// (cluster/membership) and acts on the tables it builds.
package placement
