package cluster

import (
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A replica ends when it applies the change that takes it out of its group,
// unless its log goes on past that change: a replica catching up on an old
// log (it was cut off, removed, and added back under the same ID) applies
// its removal and then its return, and must keep what it acknowledged. Made
// anew with an empty log, it would be probed forever past what its leader
// counts it holds (the leader's Next never goes below Match+1).
func TestReplicaOutOfItsGroupEndsOnlyAtTheEndOfItsLog(t *testing.T) {
	const self, other1, other2 = 1, 2, 3
	confChange := func(typ raftpb.ConfChangeType, id uint64) []byte {
		b, err := proto.Marshal(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(id)}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	entry := func(index uint64, data []byte) *raftpb.Entry {
		return &raftpb.Entry{Term: proto.Uint64(1), Index: proto.Uint64(index), Type: raftpb.EntryConfChangeV2.Enum(), Data: data}
	}
	remove := entry(2, confChange(raftpb.ConfChangeType_ConfChangeRemoveNode, self))
	addBack := entry(3, confChange(raftpb.ConfChangeType_ConfChangeAddLearnerNode, self))

	newReplica := func(t *testing.T) *group {
		t.Helper()
		c := &Cluster{self: "node-a", log: slog.New(slog.DiscardHandler)}
		r := newReplication(c, time.Now().UnixNano(), Timing{})
		r.id = self
		g, err := newGroup(r, 0, []uint64{self, other1, other2})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	t.Run("caught up past its removal", func(t *testing.T) {
		g := newReplica(t)
		if err := g.st.Append([]*raftpb.Entry{remove, addBack}); err != nil {
			t.Fatal(err)
		}
		g.apply(remove)
		if g.removed {
			t.Fatal("ended at a removal its log goes on past")
		}
		g.apply(addBack)
		if g.removed || !inConf(g.cs, self) {
			t.Fatalf("after its return: removed %v, in its configuration %v", g.removed, inConf(g.cs, self))
		}
	})
	t.Run("removal last", func(t *testing.T) {
		g := newReplica(t)
		if err := g.st.Append([]*raftpb.Entry{remove}); err != nil {
			t.Fatal(err)
		}
		g.apply(remove)
		if !g.removed {
			t.Fatal("a replica whose log ends with its removal did not end")
		}
	})
}
