package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
)

// A node's cluster identity in gossip: once this node carries a cluster ID,
// memberlist is told to refuse any node that carries another one, so that
// two clusters that formed apart never merge, whatever their seeds and
// labels say. A node without an ID (one still forming or joining) is let
// in: that is how it joins.

// ErrForeignCluster is the reason a node of another cluster is refused.
var ErrForeignCluster = errors.New("cluster: the node belongs to another cluster")

// Log keys of this file.
const (
	keyCluster      = "cluster_id"
	keyOtherCluster = "other_cluster_id"
)

var (
	_ memberlist.AliveDelegate = delegate{}
	_ memberlist.MergeDelegate = delegate{}
)

// ClusterID returns the cluster identity this node carries ("" before it
// has formed or joined).
func (m *Membership) ClusterID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta.ClusterID
}

// SetClusterID sets the cluster identity this node carries, in its
// metadata, and queues the broadcast that spreads it without waiting for it
// to go out. From then on, nodes that carry another ID are refused.
func (m *Membership) SetClusterID(id string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.setMeta(func(meta *NodeMeta) { meta.ClusterID = id }); err != nil {
		return err
	}
	// UpdateNode queues the broadcast, then waits for it to be sent: the
	// wait is cut short (its timeout error says only that).
	_ = m.list.UpdateNode(time.Millisecond)
	return nil
}

// foreign returns the refusal of a node that carries a cluster ID other
// than this node's, or nil. It runs under memberlist's node lock.
func (m *Membership) foreign(name string, rawMeta []byte) error {
	if name == m.cfg.NodeName {
		return nil
	}
	meta, err := decodeMeta(rawMeta)
	if err != nil || meta.ClusterID == "" {
		return nil
	}
	m.mu.Lock()
	ours := m.meta.ClusterID
	if ours == "" || meta.ClusterID == ours {
		m.mu.Unlock()
		return nil
	}
	// What the node now claims is recorded, so that placement leaves it
	// out even where an earlier alive message of it was let in.
	changed := false
	if e, ok := m.nodes[name]; ok && e.node.Meta.ClusterID != meta.ClusterID {
		e.node.Meta.ClusterID = meta.ClusterID
		changed = true
	}
	if m.refused == nil {
		m.refused = map[string]string{}
	}
	warn := m.refused[name] != meta.ClusterID
	m.refused[name] = meta.ClusterID
	m.mu.Unlock()
	if warn {
		m.log.Warn("membership: refusing a node of another cluster: both formed apart, and clusters never merge (restart the nodes of one of them empty, with the other's members as seeds, to join them)",
			slog.String(keyNode, name), slog.String(keyCluster, ours), slog.String(keyOtherCluster, meta.ClusterID))
	}
	if changed {
		m.notifyChange()
	}
	return fmt.Errorf("%w: %s carries cluster ID %s, this node %s", ErrForeignCluster, name, meta.ClusterID, ours)
}

func (d delegate) NotifyAlive(n *memberlist.Node) error { return d.m.foreign(n.Name, n.Meta) }

func (d delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := d.m.foreign(n.Name, n.Meta); err != nil {
			return err
		}
	}
	return nil
}
