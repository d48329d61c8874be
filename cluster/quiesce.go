package cluster

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Quiescence: a group with nothing to do costs nothing. When its leader has
// had no proposal or message for a while and every replica holds and has
// applied the whole log, the leader stops ticking (no heartbeats) and tells
// its followers, which stop ticking too (no election timeouts). Any message
// or proposal wakes a replica; a follower also wakes when the link to its
// leader's node fails or that node is declared dead, and then elects a new
// leader as after any leader loss. A leader woken by a follower's message
// heartbeats again, which wakes the rest.

// quiesceWire tells a follower that its leader (replica L, at term T) of
// partition P sleeps.
type quiesceWire struct {
	P int    `msgpack:"p"`
	T uint64 `msgpack:"t"`
	L uint64 `msgpack:"l"`
}

// quiesceAfter is how many idle ticks a leader waits before it sleeps.
func (g *group) quiesceAfter() int { return 2 * g.r.timing.ElectionTicks }

// canQuiesceLocked reports whether the leader may sleep. g.mu is held.
func (g *group) canQuiesceLocked() bool {
	if g.idleTks < g.quiesceAfter() || !g.serving || len(g.waiters) > 0 || !g.confPend.IsZero() ||
		len(g.cs.GetVotersOutgoing()) > 0 || g.rn.HasReady() {
		return false
	}
	st := g.rn.BasicStatus()
	if st.LeadTransferee != 0 || st.HardState.GetCommit() != g.applied {
		return false
	}
	last, _ := g.st.LastIndex()
	if g.applied != last {
		return false
	}
	all := true
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.Match != last || pr.State != tracker.StateReplicate {
			all = false
		}
	})
	return all
}

// isAck reports whether m only acknowledges a leader's heartbeat or append:
// what a leader gets while its group idles, which keeps it no less idle.
func isAck(m *raftpb.Message) bool {
	switch m.GetType() {
	case raftpb.MsgHeartbeatResp:
		return true
	case raftpb.MsgAppResp:
		return !m.GetReject()
	}
	return false
}

// wakeLocked ends the group's sleep. g.mu is held.
func (g *group) wakeLocked() {
	g.quiesced = false
	g.idleTks = 0
}

// sleep puts a follower to sleep on its leader's word.
func (g *group) sleep(q quiesceWire) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.leader && !g.removed && g.lead == q.L && g.term == q.T && !g.rn.HasReady() {
		g.quiesced = true
	}
}

// wakeLedBy wakes every sleeping follower whose leader is on node: its
// link failed or the node is gone, so it may have to elect another.
func (r *replication) wakeLedBy(node string) {
	for _, g := range r.all() {
		g.mu.Lock()
		if g.quiesced && !g.leader && (g.lead == 0 || r.nameOf(g.lead) == node) {
			g.wakeLocked()
		}
		g.mu.Unlock()
	}
}

// sleepAll puts to sleep the followers their leaders said sleep.
func (r *replication) sleepAll(qs []quiesceWire) {
	for _, q := range qs {
		if q.P < 0 || q.P >= len(r.groups) {
			continue
		}
		if g := r.group(q.P); g != nil {
			g.sleep(q)
		}
	}
}
