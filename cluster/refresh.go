package cluster

import (
	"log/slog"
	"time"

	"github.com/roomd/roomd/cluster/placement"
)

// How a node follows membership: the placement table, the partitions it
// gains and loses, the nodes that die.

// requestRefresh asks the refresh loop to look at membership again.
func (c *Cluster) requestRefresh() {
	select {
	case c.refreshCh <- struct{}{}:
	default:
	}
}

func (c *Cluster) refreshLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond) // also retries links and moves replicas on
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.refreshCh:
		case <-tick.C:
		}
		c.refresh()
		s := c.repl.stats()
		c.cfg.Metrics.Groups(s.led, s.followed, s.asleep, s.lag)
	}
}

// refresh rebuilds the placement table (each partition's target replicas)
// from membership, moves the groups this node leads toward their targets,
// reacts to nodes that died, and makes sure links to peers are up.
func (c *Cluster) refresh() {
	if c.ml == nil {
		c.repl.reconcile(func(p int) []uint64 { return []uint64{c.repl.id} }, map[uint64]bool{c.repl.id: true})
		return
	}
	nodes := c.ml.Nodes()
	// Only members that proved the secret on a link (in either direction)
	// form and are placed; links are dialed below to every member.
	c.mu.Lock()
	placeable := c.verifiedNodesLocked(nodes)
	c.mu.Unlock()
	serving := c.formationView(placeable) // none until this node has formed
	alive := map[string]bool{}
	aliveIDs := map[uint64]bool{c.repl.id: true}
	for _, n := range nodes {
		if n.Alive {
			alive[n.Name] = true
			aliveIDs[replicaID(n.Name, n.Meta.Incarnation)] = true
		}
	}
	next := placement.NewTable(serving, c.cfg.Partitions, c.cfg.Replicas-1)

	frozen := c.cfg.Faults.ViewFrozen() // tests: the view stays as it was
	c.mu.Lock()
	if c.closed || frozen {
		closed := c.closed
		c.mu.Unlock()
		if !closed {
			c.ensureLinks(nodes) // links prove members to the others
		}
		return
	}
	var died []string
	for name := range c.alive {
		if !alive[name] {
			died = append(died, name)
		}
	}
	if len(died) > 0 {
		c.notifyLinksLocked() // waiters for a link to a dead node give up
	}
	c.alive = alive
	if next.Version() != c.table.Version() {
		c.log.Info("placement changed", slog.Int("members", len(serving)))
	}
	c.table = next
	c.mu.Unlock()

	c.repl.setMembers(nodes)
	for _, name := range died {
		c.log.Warn("node is gone", slog.String("node", name))
		c.repl.wakeLedBy(name)
		c.leaveOrphans(name)
		if l := c.linkOf(name); l != nil {
			l.close()
		}
		c.edge.ownerLost(name)
	}
	c.repl.reconcile(func(p int) []uint64 { return c.targetIDs(next, p) }, aliveIDs)
	c.announceFormed()
	c.ensureLinks(nodes)
}

// targetIDs returns the replica IDs of partition p's target replicas in t,
// best first; a member whose incarnation is unknown is left out.
func (c *Cluster) targetIDs(t *placement.Table, p int) []uint64 {
	names := append([]string{t.Owner(p)}, t.Replicas(p)...)
	out := make([]uint64, 0, len(names))
	for _, name := range names {
		switch {
		case name == "":
		case name == c.self:
			out = append(out, c.repl.id)
		case c.ml != nil:
			if n, ok := c.ml.Node(name); ok {
				out = append(out, replicaID(name, n.Meta.Incarnation))
			}
		}
	}
	return out
}

// orphaned are the members a peer had here when its link dropped: they are
// in their presence grace, and leave at once if the peer is declared dead.
type orphaned struct {
	subs map[subKey]*linkSub
	at   time.Time
}

// orphanTTL bounds how long orphans are remembered (past any grace).
const orphanTTL = time.Minute

func (c *Cluster) orphan(peer string, subs map[subKey]*linkSub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.orphans[peer]
	if o.subs == nil || time.Since(o.at) > orphanTTL {
		o.subs = map[subKey]*linkSub{}
	}
	for k, s := range subs {
		o.subs[k] = s
	}
	o.at = time.Now()
	c.orphans[peer] = o
}

// leaveOrphans makes a dead peer's members leave now. A member that was
// taken over meanwhile (it re-joined through another node) is not touched.
func (c *Cluster) leaveOrphans(peer string) {
	c.mu.Lock()
	o := c.orphans[peer]
	delete(c.orphans, peer)
	c.mu.Unlock()
	if time.Since(o.at) > orphanTTL {
		return
	}
	for k := range o.subs {
		c.rooms.EndGrace(k.room, k.conn)
	}
}

// alive reports whether a node was alive at the last refresh.
func (c *Cluster) aliveNode(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alive[name]
}
