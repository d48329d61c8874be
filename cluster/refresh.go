package cluster

import (
	"log/slog"
	"time"
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
	tick := time.NewTicker(time.Second) // also retries links and stale pendings
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.refreshCh:
		case <-tick.C:
		}
		c.refresh()
	}
}

// refresh rebuilds the placement table from membership, starts the
// handoffs of partitions this node lost, marks those it gained, reacts to
// nodes that died, and makes sure links to peers are up.
func (c *Cluster) refresh() {
	if c.ml == nil {
		return
	}
	nodes := c.ml.Nodes()
	serving := c.formationView(nodes) // none until this node has formed
	alive := map[string]bool{}
	for _, n := range nodes {
		if n.Alive {
			alive[n.Name] = true
		}
	}
	next := NewTable(serving, c.cfg.Partitions, 0)

	c.mu.Lock()
	if c.closed || c.paused {
		c.mu.Unlock()
		return
	}
	prev := c.table
	if len(prev.Members()) == 0 && !(c.form.bootstrapped && !c.form.formed) {
		// This node's first view: what it gains, it gains from the owners
		// the others had without it. (A cluster bootstrapped just now had
		// no owners before: nothing is handed over.)
		var others []string
		for _, name := range serving {
			if name != c.self {
				others = append(others, name)
			}
		}
		prev = NewTable(others, c.cfg.Partitions, 0)
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
	var lost []Move
	if next.Version() != prev.Version() {
		for _, mv := range Moves(prev, next) {
			switch {
			case mv.To == c.self && mv.From != "" && alive[mv.From]:
				if d, ok := c.dones[mv.Partition]; ok && d.from == mv.From && time.Since(d.at) < doneTTL {
					delete(c.dones, mv.Partition)
				} else {
					c.pending[mv.Partition] = mv.From
				}
			case mv.From == c.self && mv.To != "":
				delete(c.pending, mv.Partition)
				lost = append(lost, mv)
			}
		}
		c.table = next
		c.log.Info("placement changed", slog.Int("members", len(serving)), slog.Int("partitions_lost", len(lost)))
	}
	// A partition waiting on a node that died will never be handed over.
	for p, from := range c.pending {
		if !alive[from] || next.Owner(p) != c.self {
			delete(c.pending, p)
		}
	}
	c.handoffs += len(lost)
	for p, d := range c.dones {
		if time.Since(d.at) >= doneTTL {
			delete(c.dones, p)
		}
	}
	c.mu.Unlock()

	for _, name := range died {
		c.log.Warn("node is gone", slog.String("node", name))
		c.leaveOrphans(name)
		if l := c.linkOf(name); l != nil {
			l.close()
		}
		c.edge.ownerLost(name)
	}
	for _, mv := range lost {
		c.wg.Add(1)
		go c.handOff(mv)
	}
	c.announceFormed()
	c.ensureLinks(nodes)
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

// doneMark remembers a handover that finished before this node saw the
// move; it counts for doneTTL.
type doneMark struct {
	from string
	at   time.Time
}

const doneTTL = 30 * time.Second

// alive reports whether a node was alive at the last refresh.
func (c *Cluster) aliveNode(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alive[name]
}
