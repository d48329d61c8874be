package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/cluster/placement"
)

// seesMember reports whether n's membership lists name.
func seesMember(n *node, name string) bool {
	for _, m := range n.cl.Members(context.Background()) {
		if m.Name == name {
			return true
		}
	}
	return false
}

// membershipSees reports whether a bare membership lists name.
func membershipSees(m *membership.Membership, name string) bool {
	_, ok := m.Node(name)
	return ok
}

// holdFor fails the test if cond returns an error at any poll during d.
func holdFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
	}
}

// With a cluster secret and no cluster key, gossip is still sealed (with a
// key derived from the secret): a memberlist node without a key, or with
// another, cannot join, while one with the derived key can.
func TestGossipRefusesNodesWithoutTheKey(t *testing.T) {
	a := startNode(t, "node-a")
	newMembership := func(name string, key []byte) *membership.Membership {
		m, err := membership.New(membership.Config{
			NodeName: name, BindAddr: "127.0.0.1:0", Join: []string{a.cl.GossipAddr()},
			Fast: true, Label: "test", Key: key,
			Meta: membership.NodeMeta{HTTPAddr: "127.0.0.1:1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		return m
	}
	noKey := newMembership("rogue-nokey", nil)
	wrongKey := newMembership("rogue-wrongkey", cluster.GossipKey([]byte("another-secret")))
	good := newMembership("keyed", cluster.GossipKey([]byte(testSecret)))

	// Gossip with push/pull every second: two rounds would have let them in.
	holdFor(t, 2500*time.Millisecond, func() error {
		for _, rogue := range []string{"rogue-nokey", "rogue-wrongkey"} {
			if seesMember(a, rogue) {
				return fmt.Errorf("%s joined the gossip", rogue)
			}
		}
		if membershipSees(noKey, "node-a") || membershipSees(wrongKey, "node-a") {
			return fmt.Errorf("a rogue node sees the cluster")
		}
		return nil
	})
	// ...while the node with the key got in.
	checkFor(t, 10*time.Second, func() error {
		if !seesMember(a, "keyed") || !membershipSees(good, "node-a") {
			return fmt.Errorf("the node with the derived key did not join")
		}
		return nil
	})
}

// A node with a wrong secret (here with the right gossip key, so that it is
// a member of the gossip) fails every link handshake: it is never placed,
// takes no partition, and forms nothing.
func TestWrongSecretNodeIsNeverPlaced(t *testing.T) {
	key := cluster.GossipKey([]byte("explicit-gossip-key-source"))
	a := startNodeWith(t, "node-a", nodeOpts{key: key})
	b := startNodeWith(t, "node-b", nodeOpts{key: key}, a.cl.GossipAddr())
	// Named to sort between them, so it dials node-b and node-a dials it.
	rogue := startNodeWith(t, "node-ab", nodeOpts{key: key, secret: "a-wrong-cluster-secret"}, a.cl.GossipAddr())
	waitConverged(t, a, b)
	checkFor(t, 10*time.Second, func() error {
		for _, n := range []*node{a, b} {
			if !seesMember(n, "node-ab") {
				return fmt.Errorf("%s does not see the rogue in the gossip", n.name)
			}
		}
		return nil
	})
	holdFor(t, 3*time.Second, func() error {
		for _, n := range []*node{a, b} {
			p := n.cl.Placement()
			if m := p.Members(); slices.Contains(m, "node-ab") || len(m) != 2 {
				return fmt.Errorf("%s places %v", n.name, m)
			}
			for part := range placement.DefaultPartitions {
				if p.Owner(part) == "node-ab" || slices.Contains(p.Replicas(part), "node-ab") {
					return fmt.Errorf("%s gives partition %d to the rogue", n.name, part)
				}
			}
			for _, m := range n.cl.Members(context.Background()) {
				if m.Name == "node-ab" && m.Partitions > 0 {
					return fmt.Errorf("the rogue leads %d partitions", m.Partitions)
				}
			}
		}
		if rogue.cl.Formed() {
			return fmt.Errorf("the rogue formed a cluster")
		}
		if m := rogue.cl.Placement().Members(); len(m) != 0 {
			return fmt.Errorf("the rogue places %v", m)
		}
		return nil
	})
	if rogue.metrics.linksUp.Load() != 0 {
		t.Errorf("the rogue opened %d links", rogue.metrics.linksUp.Load())
	}
}
