package cluster

import (
	"fmt"

	"github.com/roomd/roomd/cluster/placement"
)

// GroupState describes a node's replica of partition p (diagnostics).
func GroupState(c *Cluster, p int) string {
	g := c.repl.group(p)
	if g == nil {
		return fmt.Sprintf("%s: no replica (hint %q)", c.self, c.repl.leaderOf(p))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.rn.BasicStatus()
	last, _ := g.st.LastIndex()
	return fmt.Sprintf("%s: id %d lead %d term %d state %v commit %d applied %d last %d quiesced %v removed %v serving %v",
		c.self, g.id, g.lead, st.HardState.GetTerm(), st.RaftState, st.HardState.GetCommit(), g.applied, last, g.quiesced, g.removed, g.serving)
}

// StuckPartition returns a partition this node is not settled on, or -1.
func StuckPartition(c *Cluster) int { return c.unsettled() }

// Unsettled describes why a node is not settled (tests' diagnostics).
func Unsettled(c *Cluster) string {
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	noLeader, moving := 0, 0
	example := ""
	for p := range c.cfg.Partitions {
		if c.repl.leaderOf(p) == "" {
			noLeader++
			continue
		}
		if !c.repl.settled(p, c.targetIDs(t, p)) {
			moving++
			if example == "" {
				g := c.repl.group(p)
				g.mu.Lock()
				st := g.rn.Status()
				example = fmt.Sprintf("p%d voters %v learners %v out %v want %v commit %d progress %v", p, g.cs.GetVoters(), g.cs.GetLearners(), g.cs.GetVotersOutgoing(), c.targetIDs(t, p), st.HardState.GetCommit(), st.Progress)
				g.mu.Unlock()
			}
		}
	}
	return fmt.Sprintf("%d without a leader, %d moving (%s), members rejoining %v", noLeader, moving, example, c.edge.moving())
}

// Serves reports whether c serves (leads, applied) room's partition now.
func Serves(c *Cluster, roomName string) bool {
	return c.servingErr(placement.PartitionOf(roomName, c.cfg.Partitions)) == nil
}
