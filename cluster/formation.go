package cluster

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/cluster/placement"
)

// Formation: how a node comes to own rooms. Until it has formed, a node's
// placement table is empty, so it owns no room, and Ready says why.
//
//   - A node with Expect (N) bootstraps a new cluster together with the
//     others once it sees N serving members, none of which has formed: they
//     all derive the same cluster ID from the set they saw.
//   - A node with seeds but no Expect never bootstraps: it waits until it
//     sees a member of a formed cluster (one that carries a cluster ID) and
//     adopts that ID. So does a node with Expect that finds an existing
//     cluster rather than N fresh nodes (a restarted node, a scale-up).
//   - A node with neither is a cluster of its own at once.
//
// Once formed, a node places rooms on the serving members that carry its
// cluster ID or none yet (those form or join at once: a node that joins is
// placed as it did before formation existed, so that every member computes
// the same table), and memberlist refuses nodes that carry another ID
// (cluster/membership, identity.go): two clusters that formed apart never merge. A
// node that is placed before it has formed answers its rooms' ops with
// room_moved until it has, and its peers retry.

// Sentinel errors of Ready.
var (
	// ErrForming: the node waits for Expect serving members to bootstrap a
	// cluster with.
	ErrForming = errors.New("forming")
	// ErrJoining: the node has seeds and no Expect, and has not yet seen a
	// member of a formed cluster to join.
	ErrJoining = errors.New("joining")
)

// formSettle is how long a node with Expect that sees a formed member waits
// to see the whole set that member may have bootstrapped with (so that it
// records the same bootstrap), before it joins the cluster instead.
const formSettle = 2 * time.Second

// Log keys of this file.
const (
	fmKeyCluster      = "cluster_id"
	fmKeyMembers      = "members"
	fmKeyBootstrapped = "bootstrapped"
	fmKeyExpect       = "expect"
)

// formState is a node's formation, under Cluster.mu.
type formState struct {
	decided      bool          // the ID is chosen (and set in the node's metadata)
	formed       bool          // decided, and the placement built on it is in force
	id           string        // the cluster ID ("" for a cluster of one without gossip)
	members      []string      // sorted names of the members the node formed with
	bootstrapped bool          // it started a new cluster; false: it joined one
	seen         int           // serving members seen at the last refresh, while forming
	formedSeen   time.Time     // when a member of a formed cluster was first seen, while forming
	formedCh     chan struct{} // closed once formed
}

// Formed reports whether this node has formed or joined a cluster, and so
// may own rooms.
func (c *Cluster) Formed() bool { return c.formed.Load() }

// FormedC returns a channel closed once this node has formed.
func (c *Cluster) FormedC() <-chan struct{} { return c.form.formedCh }

// Formation returns, once this node has formed (ok), the sorted names of
// the members it formed with and whether it bootstrapped a new cluster with
// them (Expect, or alone) rather than joining an existing one.
func (c *Cluster) Formation() (members []string, bootstrapped bool, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.form.formed {
		return nil, false, false
	}
	return slices.Clone(c.form.members), c.form.bootstrapped, true
}

// ClusterID returns the identity of the cluster this node formed or joined
// ("" before, and for a cluster of one without gossip).
func (c *Cluster) ClusterID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.form.id
}

// Ready returns nil once this node has formed, else why it serves no room
// yet: ErrForming ("forming: 2 of 3 members") or ErrJoining, wrapped.
func (c *Cluster) Ready() error {
	if c.formed.Load() { // every op asks: no lock once formed
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.form.formed:
		return nil
	case c.cfg.Expect > 0:
		return fmt.Errorf("%w: %d of %d members", ErrForming, c.form.seen, c.cfg.Expect)
	default:
		return fmt.Errorf("%w: no member of a formed cluster seen through the seeds yet", ErrJoining)
	}
}

// formAlone marks a cluster of one without gossip formed, in New.
func (c *Cluster) formAlone() {
	c.form.decided, c.form.formed = true, true
	c.form.members = []string{c.self}
	c.form.bootstrapped = true
	c.formed.Store(true)
	close(c.form.formedCh)
}

// formationView returns the members placement is built on: none until this
// node has formed, which it does here when it can. It runs on the refresh
// goroutine.
func (c *Cluster) formationView(nodes []membership.Node) []string {
	c.mu.Lock()
	st := c.form
	c.mu.Unlock()
	if !st.decided {
		now := time.Now()
		d := decideFormation(c.self, c.cfg.Expect, len(c.cfg.Gossip.Join) > 0, nodes, now, st.formedSeen)
		c.mu.Lock()
		c.form.seen = d.seen
		if d.formedSeen && c.form.formedSeen.IsZero() {
			c.form.formedSeen = now
		}
		c.mu.Unlock()
		if !d.ok {
			return nil
		}
		if err := c.ml.SetClusterID(d.id); err != nil {
			return nil // shutting down
		}
		c.mu.Lock()
		c.form.decided, c.form.id, c.form.members, c.form.bootstrapped = true, d.id, d.members, d.bootstrapped
		st = c.form
		c.mu.Unlock()
	}
	var out []string
	for _, n := range nodes {
		if !n.Alive || n.Meta.State != membership.StateServing {
			continue
		}
		// A node without an ID is forming or joining (it adopts the ID as
		// soon as it sees it, or is refused); this node carries the ID from
		// now on (the nodes may predate that). The first table of a
		// bootstrap has its set only: one more node joins after it.
		fresh := n.Meta.ClusterID == "" && (st.formed || !st.bootstrapped || slices.Contains(st.members, n.Name))
		if n.Name == c.self || fresh || n.Meta.ClusterID == st.id {
			out = append(out, n.Name)
		}
	}
	return out
}

// announceFormed marks the node formed once its ID is chosen and the
// placement built on it is in force, and calls onFormed once. It runs on
// the refresh goroutine, without c.mu.
func (c *Cluster) announceFormed() {
	c.mu.Lock()
	if !c.form.decided || c.form.formed {
		c.mu.Unlock()
		return
	}
	st := c.form
	c.mu.Unlock()
	// Logged before Ready turns nil: no room is served before this line.
	if st.bootstrapped {
		c.log.Info("cluster formed: bootstrapped a new cluster", slog.String(fmKeyCluster, st.id),
			slog.Any(fmKeyMembers, st.members), slog.Int(fmKeyExpect, c.cfg.Expect))
	} else {
		c.log.Info("cluster formed: joined an existing cluster", slog.String(fmKeyCluster, st.id),
			slog.Any(fmKeyMembers, st.members))
	}
	c.mu.Lock()
	c.form.formed = true
	c.formed.Store(true)
	close(c.form.formedCh)
	c.mu.Unlock()
	if c.onFormed != nil {
		c.onFormed()
	}
}

// formDecision is what decideFormation found.
type formDecision struct {
	ok           bool // form now, with:
	id           string
	members      []string
	bootstrapped bool
	seen         int  // serving members seen
	formedSeen   bool // a member of a formed cluster is seen
}

// decideFormation decides, from the nodes this node sees, whether it forms
// now and how (see the top of this file). formedSeen is when this node
// first saw a formed member while forming (zero: not yet).
func decideFormation(self string, expect int, seeds bool, nodes []membership.Node, now, formedSeen time.Time) formDecision {
	var d formDecision
	var fresh []membership.Node            // serving, no cluster ID (this node among them)
	byID := map[string][]membership.Node{} // serving members of formed clusters
	for _, n := range nodes {
		if !n.Alive || n.Meta.State != membership.StateServing {
			continue
		}
		d.seen++
		if n.Meta.ClusterID == "" || n.Name == self {
			fresh = append(fresh, n)
		} else {
			byID[n.Meta.ClusterID] = append(byID[n.Meta.ClusterID], n)
		}
	}
	if expect <= 0 && !seeds {
		d.ok, d.bootstrapped, d.members = true, true, []string{self}
		d.id = formClusterID([]membership.Node{{Name: self, Meta: selfMeta(nodes, self)}})
		return d
	}
	if len(byID) > 0 {
		d.formedSeen = true
		// The cluster with the most members seen, then the least ID.
		ids := make([]string, 0, len(byID))
		for id := range byID {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int {
			return cmp.Or(cmp.Compare(len(byID[b]), len(byID[a])), cmp.Compare(a, b))
		})
		id := ids[0]
		if expect > 0 {
			// Was it bootstrapped with this node? Then it is one of them.
			set := append(slices.Clone(fresh), byID[id]...)
			if len(set) >= expect && formClusterID(set) == id {
				d.ok, d.id, d.bootstrapped, d.members = true, id, true, formNames(set)
				return d
			}
			if len(set) < expect && (formedSeen.IsZero() || now.Sub(formedSeen) < formSettle) {
				return d // the rest of its set may be on its way
			}
		}
		d.ok, d.id, d.members = true, id, formNames(append(byID[id], membership.Node{Name: self}))
		return d
	}
	if expect > 0 && len(fresh) >= expect {
		d.ok, d.id, d.bootstrapped, d.members = true, formClusterID(fresh), true, formNames(fresh)
	}
	return d
}

// formClusterID derives a cluster ID from the members a cluster is
// bootstrapped with: every node that saw the same set (names and
// incarnations) derives the same ID, and a cluster bootstrapped again (new
// incarnations) gets a new one. 24 hex digits.
func formClusterID(set []membership.Node) string {
	set = slices.Clone(set)
	slices.SortFunc(set, func(a, b membership.Node) int { return cmp.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, n := range set {
		h.Write([]byte(n.Name))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, n.Meta.Incarnation, 10))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// formNames returns the sorted, unique names of nodes.
func formNames(nodes []membership.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// selfMeta returns the metadata of the node named self among nodes.
func selfMeta(nodes []membership.Node, self string) membership.NodeMeta {
	for _, n := range nodes {
		if n.Name == self {
			return n.Meta
		}
	}
	return membership.NodeMeta{}
}

// bootstrapFormed creates this node's replicas of a cluster it bootstrapped
// (onFormed): every partition's group starts with the top Replicas members
// of the formation set by HRW, and its first-ranked member campaigns. Every
// node of the set computes the same groups. A node that joined an existing
// cluster bootstraps nothing: the groups' leaders add it.
func (c *Cluster) bootstrapFormed() {
	members, bootstrapped, ok := c.Formation()
	if !ok || !bootstrapped {
		return
	}
	t := placement.NewTable(members, c.cfg.Partitions, c.cfg.Replicas-1)
	c.repl.bootstrap(func(p int) []uint64 {
		ids := c.targetIDs(t, p)
		if len(ids) != 1+len(t.Replicas(p)) {
			return nil // a member's incarnation is unknown: not a group to bootstrap
		}
		return ids
	}, func(p int) bool { return t.Owner(p) == c.self })
	c.log.Info("replication groups bootstrapped", slog.Int("partitions", c.cfg.Partitions), slog.Int("replicas", 1+t.ReplicaCount()))
}
