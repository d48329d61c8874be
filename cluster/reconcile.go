package cluster

import (
	"log/slog"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// Moves: each group's leader changes the group's replicas toward its
// target, the top R serving members by HRW, one configuration change at a
// time: a new replica joins as a learner, is promoted once it has caught up
// (replacing, in one joint change, a replica that is no longer a target),
// and replicas that are no longer targets leave. The leader hands its
// leadership to the first target once that replica has caught up, so a
// graceful leave moves leadership before removing anything.

// confPendingFor is how long a proposed change blocks the next one unless
// it is applied sooner.
const confPendingFor = 5 * time.Second

// preferAfter is how long a leader serves before it hands leadership to
// the preferred replica, so leadership does not swing while members come.
const preferAfter = time.Second

// reconcile moves every group this node leads one step toward its target.
// target gives a partition's target replica IDs, best first.
func (r *replication) reconcile(target func(p int) []uint64, alive map[uint64]bool) {
	for _, g := range r.all() {
		g.mu.Lock()
		if g.serving {
			g.reconcileLocked(target(g.p), alive)
		}
		g.mu.Unlock()
	}
}

// reconcileLocked makes at most one change. g.mu is held on entry.
func (g *group) reconcileLocked(want []uint64, alive map[uint64]bool) {
	if len(want) == 0 || time.Now().Before(g.confPend) {
		return
	}
	cs := g.cs
	if len(cs.GetVotersOutgoing()) > 0 {
		return // in a joint configuration; raft leaves it by itself
	}
	voters, learners := cs.GetVoters(), cs.GetLearners()
	commit := g.rn.BasicStatus().HardState.GetCommit()
	caughtUp := map[uint64]bool{}
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.Match >= commit {
			caughtUp[id] = true
		}
	})
	isVoter := func(id uint64) bool { return containsID(voters, id) }
	isLearner := func(id uint64) bool { return containsID(learners, id) }

	// A target that is not in the group joins as a learner.
	for _, id := range want {
		if !isVoter(id) && !isLearner(id) {
			g.confChange("add learner", single(raftpb.ConfChangeType_ConfChangeAddLearnerNode, id))
			return
		}
	}
	// A caught-up target learner becomes a voter, in place of a voter that
	// is no longer a target when there is one (one joint change).
	for _, id := range want {
		if !isLearner(id) || !caughtUp[id] {
			continue
		}
		changes := single(raftpb.ConfChangeType_ConfChangeAddNode, id)
		if old := g.replaceable(voters, want, alive); old != 0 {
			changes = append(changes, single(raftpb.ConfChangeType_ConfChangeRemoveNode, old)...)
		}
		g.confChange("promote", changes)
		return
	}
	// A voter that is no longer a target leaves once every target is a
	// voter, never before: a node that only seems gone (a slow node's
	// failure detection) must not shrink the group below its targets.
	for _, id := range want {
		if !isVoter(id) {
			return
		}
	}
	for _, id := range voters {
		if containsID(want, id) {
			continue
		}
		if id == g.id {
			g.transferTo(want, caughtUp, isVoter)
			return
		}
		g.confChange("remove voter", single(raftpb.ConfChangeType_ConfChangeRemoveNode, id))
		return
	}
	for _, id := range learners {
		if !containsID(want, id) {
			g.confChange("remove learner", single(raftpb.ConfChangeType_ConfChangeRemoveNode, id))
			return
		}
	}
	// The preferred replica leads, once it has caught up.
	if want[0] != g.id && time.Since(g.ledSince) > preferAfter {
		g.transferTo(want, caughtUp, isVoter)
	}
}

// replaceable picks a voter that is no longer a target, one whose node is
// gone first; never this replica (it leaves last, after handing over).
func (g *group) replaceable(voters, want []uint64, alive map[uint64]bool) uint64 {
	var pick uint64
	for _, id := range voters {
		if containsID(want, id) || id == g.id {
			continue
		}
		if !alive[id] {
			return id
		}
		pick = id
	}
	return pick
}

// transferTo hands leadership to the best caught-up target voter.
func (g *group) transferTo(want []uint64, caughtUp map[uint64]bool, isVoter func(uint64) bool) {
	for _, id := range want {
		if id != g.id && isVoter(id) && caughtUp[id] {
			if g.rn.BasicStatus().LeadTransferee != id {
				g.log.Debug("handing leadership over", slog.Uint64("to", id))
				g.wakeLocked()
				g.rn.TransferLeader(id)
				g.r.schedule(g)
			}
			return
		}
	}
}

func single(t raftpb.ConfChangeType, id uint64) []*raftpb.ConfChangeSingle {
	return []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: proto.Uint64(id)}}
}

// confChange proposes one configuration change. g.mu is held on entry.
func (g *group) confChange(what string, changes []*raftpb.ConfChangeSingle) {
	cc := &raftpb.ConfChangeV2{Changes: changes}
	g.wakeLocked()
	if err := g.rn.ProposeConfChange(cc); err != nil {
		g.log.Warn("configuration change refused", slog.String("change", what), slog.Any("err", err))
		return
	}
	g.confPend = time.Now().Add(confPendingFor)
	g.log.Debug("configuration change proposed", slog.String("change", what))
	g.r.schedule(g)
}
