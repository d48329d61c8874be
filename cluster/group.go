package cluster

import (
	"context"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// group is this node's replica of one partition's consensus group: a raft
// RawNode over an in-memory log, whose committed commands are applied to the
// rooms of the partition. The leader serves the rooms (holds their
// subscribers and presence); every replica applies.
//
// Locks: group.mu comes before a room's lock (Apply delivers under it), and
// nothing holding a room's lock takes group.mu (the whole order:
// docs/LOCKS.md).
type group struct {
	r    *replication
	p    int
	id   uint64 // this node's replica ID
	log  *slog.Logger
	work atomic.Bool // queued for the scheduler

	mu       sync.Mutex
	rn       *raft.RawNode
	st       *raft.MemoryStorage
	cs       *raftpb.ConfState
	applied  uint64
	lead     uint64 // the leader as this replica last knew it; 0: none
	term     uint64
	leader   bool   // this replica leads
	serving  bool   // leads, and has applied an entry of its term
	open     bool   // serving, and its rooms serve (Manager.Serve ran): ops are taken
	servedN  uint64 // counts the times serving began, to match handle's open to its process
	removed  bool   // this replica left the group
	sinceSnp int    // entries applied since the last snapshot
	waiters  map[uint64]*waiter
	nextProp uint64
	confPend time.Time // a conf change proposed by this leader blocks the next until then
	gone     []removal // replicas removed by the entries being applied
	ledSince time.Time // when this replica started serving
	quiesced bool      // asleep: not ticked until a message or proposal wakes it (quiesce.go)
	idleTks  int       // ticks since the last proposal or message, as leader
}

// removal is a replica removed by the conf change at index.
type removal struct {
	id, index uint64
}

// waiter is a proposal waiting to be applied.
type waiter struct {
	ch   chan struct{}
	seq  uint64
	err  error
	sent time.Time
}

// wait blocks until the proposal is applied, the group's leadership moves
// (a retryable error), or ctx ends.
func (w *waiter) wait(ctx context.Context) (uint64, error) {
	select {
	case <-w.ch:
		return w.seq, w.err
	case <-ctx.Done():
		return 0, protocol.NewError(protocol.CodeUnavailable, "the write was not committed in time")
	}
}

var errLeaderMoved = protocol.NewError(protocol.CodeRoomMoved, "the room's leader changed; retry")

// newGroup makes the replica of partition p; with peers it is bootstrapped
// as the group's first configuration, without it waits for its leader to
// reach it.
func newGroup(r *replication, p int, peers []uint64) (*group, error) {
	g := &group{r: r, p: p, id: r.id, st: raft.NewMemoryStorage(), waiters: map[uint64]*waiter{},
		log: r.c.log.With(slog.Int("partition", p)), cs: &raftpb.ConfState{}}
	if len(peers) > 0 {
		// The first configuration, as the state at index 1: the group can
		// elect at once (no conf change entries to apply first), and a
		// replica added later catches up from there.
		cs := &raftpb.ConfState{Voters: slices.Clone(peers)}
		if err := g.st.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: cs}}); err != nil {
			return nil, err
		}
		g.cs, g.applied = cs, 1
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        r.id,
		ElectionTick:              r.timing.ElectionTicks,
		HeartbeatTick:             r.timing.HeartbeatTicks,
		Storage:                   &groupStorage{MemoryStorage: g.st, g: g},
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		Logger:                    &raftLogger{log: g.log},
	})
	if err != nil {
		return nil, err
	}
	g.rn = rn
	return g, nil
}

// propose appends a room command to the group's log. It fails at once when
// this replica does not serve the partition.
func (g *group) propose(cmd *room.Command) (*waiter, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.serving {
		return nil, g.notServingLocked()
	}
	g.nextProp++
	n := g.nextProp
	body := cmd.Marshal()
	data := make([]byte, 16+len(body))
	binary.BigEndian.PutUint64(data, g.id)
	binary.BigEndian.PutUint64(data[8:], n)
	copy(data[16:], body)
	if err := g.rn.Propose(data); err != nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "proposal refused: %v", err)
	}
	w := &waiter{ch: make(chan struct{}), sent: time.Now()}
	g.waiters[n] = w
	g.wakeLocked()
	g.r.schedule(g)
	return w, nil
}

// notServingLocked is the error for an op at a replica that does not serve.
// g.mu is held on entry.
func (g *group) notServingLocked() error {
	if g.lead != 0 && g.lead != g.id {
		return protocol.NewError(protocol.CodeRoomMoved, "another node leads this room's partition")
	}
	return protocol.NewError(protocol.CodeUnavailable, "this room's partition has no leader now")
}

// step hands the group a message from a peer.
func (g *group) step(m *raftpb.Message) {
	g.mu.Lock()
	if g.removed {
		g.mu.Unlock()
		return
	}
	if m.GetType() == raftpb.MsgHeartbeat {
		// A heartbeat from before this replica was made anew (its node
		// dropped an earlier replica of the same ID that was removed)
		// may name a commit past its log: never commit past what it has.
		if last, _ := g.st.LastIndex(); m.GetCommit() > last {
			m.Commit = proto.Uint64(last)
		}
	}
	if !g.leader || !isAck(m) {
		g.wakeLocked()
	}
	err := g.rn.Step(m)
	g.mu.Unlock()
	if err == nil {
		g.r.schedule(g)
	}
}

// tick advances the group's clock by one tick and reports whether it has
// work, and whether it just fell asleep (its followers are to be told).
func (g *group) tick() (ready, quiesce bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed || g.quiesced {
		return false, false
	}
	g.rn.Tick()
	if g.leader {
		g.idleTks++
		if g.canQuiesceLocked() {
			g.quiesced = true
			return g.rn.HasReady(), true
		}
	}
	return g.rn.HasReady(), false
}

// transition is what process found changed, for the caller to act on once
// group.mu is released.
type transition struct {
	served, unserved, removed bool
	servedN                   uint64 // with served: g.servedN then
}

// process handles one Ready: persists to the in-memory log, sends the
// messages, applies what is committed, and advances.
func (g *group) process(out *outbox) transition {
	var t transition
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed || !g.rn.HasReady() {
		return t
	}
	rd := g.rn.Ready()
	wasServing := g.serving
	if rd.SoftState != nil {
		g.lead = rd.SoftState.Lead
		g.leader = rd.SoftState.RaftState == raft.StateLeader
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		g.term = rd.HardState.GetTerm()
		_ = g.st.SetHardState(rd.HardState)
	}
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		g.restore(rd.Snapshot)
	}
	if len(rd.Entries) > 0 {
		_ = g.st.Append(rd.Entries)
	}
	out.add(g.p, rd.Messages)
	for _, e := range rd.CommittedEntries {
		g.apply(e)
	}
	// A replica that was removed may never hear of it (the leader stops
	// sending to it): tell its node directly, unless a later change of the
	// same batch added it back.
	for _, rm := range g.gone {
		if !inConf(g.cs, rm.id) {
			g.r.c.tellRemoved(g.r.nameOf(rm.id), g.p, rm.id, rm.index)
		}
	}
	g.gone = g.gone[:0]
	g.rn.Advance(rd)

	if !g.leader {
		g.serving = false
	}
	if !g.serving || g.removed {
		g.open = false
	}
	if g.serving && !wasServing {
		g.ledSince = time.Now()
		g.servedN++
		t.served, t.servedN = true, g.servedN
	}
	if wasServing && !g.serving {
		t.unserved = true
		g.failWaitersLocked(errLeaderMoved)
	}
	if g.removed {
		t.removed = true
		t.unserved = t.unserved || wasServing
		g.failWaitersLocked(errLeaderMoved)
	}
	g.maybeSnapshotLocked()
	if g.rn.HasReady() {
		g.r.schedule(g)
	}
	return t
}

// apply applies one committed entry. g.mu is held on entry.
func (g *group) apply(e *raftpb.Entry) {
	g.applied = e.GetIndex()
	g.sinceSnp++
	switch e.GetType() {
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeI
		if e.GetType() == raftpb.EntryConfChange {
			var c1 raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &c1); err != nil {
				g.log.Error("undecodable conf change", slog.Any("err", err))
				return
			}
			cc = &c1
		} else {
			var c2 raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &c2); err != nil {
				g.log.Error("undecodable conf change", slog.Any("err", err))
				return
			}
			cc = &c2
		}
		before := g.cs
		g.cs = g.rn.ApplyConfChange(cc)
		g.confPend = time.Time{}
		if g.leader {
			for _, id := range slices.Concat(before.GetVoters(), before.GetLearners(), before.GetVotersOutgoing()) {
				if id != g.id && !inConf(g.cs, id) {
					g.gone = append(g.gone, removal{id: id, index: e.GetIndex()})
				}
			}
		}
		// A change that takes this replica out ends it, unless its log
		// goes on past the change: a replica catching up on an old log
		// applies removals that later entries undo (it was added back under
		// the same ID, and the leader counts on what it acknowledged; made
		// anew, with nothing, it would be probed past its empty log
		// forever). Such a replica stays, inert out of the configuration
		// (raft never lets it campaign), until it applies its return, or
		// until its leader says it is out (replication.removedFrom).
		if last, _ := g.st.LastIndex(); !inConf(g.cs, g.id) && len(g.cs.GetVoters()) > 0 && last <= e.GetIndex() {
			g.removed = true
		}
		return
	}
	if e.GetTerm() == g.term && g.leader && !g.serving {
		// The first entry of this leader's term: everything committed
		// before it is applied, so the rooms here are the rooms.
		g.serving = true
		g.r.c.redeliverHooks(g.p)
	}
	data := e.GetData()
	if len(data) < 16 {
		return // the empty entry a new leader appends
	}
	from, n := binary.BigEndian.Uint64(data), binary.BigEndian.Uint64(data[8:])
	cmd, err := room.DecodeCommand(data[16:])
	var seq uint64
	if err == nil {
		hook, epoch, before := g.r.c.hookBefore(g, cmd)
		seq, err = g.r.c.rooms.Apply(cmd)
		if hook && err == nil {
			g.r.c.hookApplied(cmd, epoch, before, seq)
		}
	} else {
		g.log.Error("undecodable room command", slog.Any("err", err))
	}
	if from != g.id {
		return
	}
	if w := g.waiters[n]; w != nil {
		delete(g.waiters, n)
		w.seq, w.err = seq, err
		g.r.c.cfg.Metrics.Committed(time.Since(w.sent))
		close(w.ch)
	}
}

// failWaitersLocked ends every waiting proposal with err. g.mu is held.
func (g *group) failWaitersLocked(err error) {
	for n, w := range g.waiters {
		delete(g.waiters, n)
		w.err = err
		close(w.ch)
	}
}

// snapshotEvery is how many applied entries make the group snapshot its
// rooms and compact its log; snapshotKeep entries stay behind for replicas
// a little behind.
const (
	snapshotEvery = 4096
	snapshotKeep  = 1024
)

// groupSnapshot is a partition's snapshot: its rooms' durable state.
type groupSnapshot struct {
	Rooms [][]byte `msgpack:"rooms"`
}

// groupStorage is the group's log; a snapshot raft asks for (to catch a
// replica up) is made afresh from the rooms as applied, so that it carries
// the configuration that replica was added by.
type groupStorage struct {
	*raft.MemoryStorage
	g *group
}

// Snapshot is called by raft, with g.mu held.
func (s *groupStorage) Snapshot() (*raftpb.Snapshot, error) {
	s.g.snapshotLocked()
	return s.MemoryStorage.Snapshot()
}

// maybeSnapshotLocked snapshots and compacts the log every snapshotEvery
// applied entries. g.mu is held on entry.
func (g *group) maybeSnapshotLocked() {
	if g.sinceSnp < snapshotEvery || g.applied == 0 {
		return
	}
	if g.snapshotLocked() && g.applied > snapshotKeep {
		_ = g.st.Compact(g.applied - snapshotKeep)
	}
}

// snapshotLocked records a snapshot of the rooms at the applied index,
// unless the last one is as recent. g.mu is held on entry.
func (g *group) snapshotLocked() bool {
	if snap, err := g.st.Snapshot(); err == nil && snap.GetMetadata().GetIndex() >= g.applied {
		return false
	}
	g.sinceSnp = 0
	var gs groupSnapshot
	for _, s := range g.r.c.rooms.ExportDurable(g.r.c.inPartition(g.p)) {
		b, err := s.MarshalMsgpack()
		if err != nil {
			g.log.Error("snapshot a room", slog.Any("err", err))
			return false
		}
		gs.Rooms = append(gs.Rooms, b)
	}
	data, err := msgpack.Marshal(&gs)
	if err != nil {
		g.log.Error("snapshot a partition", slog.Any("err", err))
		return false
	}
	_, err = g.st.CreateSnapshot(g.applied, g.cs, data)
	return err == nil
}

// restore installs a snapshot from the leader: the partition's rooms are
// replaced by the snapshot's. g.mu is held on entry.
func (g *group) restore(snap *raftpb.Snapshot) {
	if err := g.st.ApplySnapshot(snap); err != nil {
		g.log.Error("apply a snapshot", slog.Any("err", err))
		return
	}
	md := snap.GetMetadata()
	g.cs = md.GetConfState()
	g.applied = md.GetIndex()
	var gs groupSnapshot
	var snaps []*room.Snapshot
	var err error
	if len(snap.GetData()) > 0 { // the first configuration's state has no rooms
		err = msgpack.Unmarshal(snap.GetData(), &gs)
	}
	for i := 0; err == nil && i < len(gs.Rooms); i++ {
		var s *room.Snapshot
		if s, err = room.DecodeSnapshot(gs.Rooms[i]); err == nil {
			snaps = append(snaps, s)
		}
	}
	if err == nil {
		err = g.r.c.rooms.Restore(g.r.c.inPartition(g.p), snaps)
	}
	if err != nil {
		g.log.Error("restore the partition's rooms from a snapshot", slog.Any("err", err))
	}
}

// inConf reports whether a replica is in a configuration, in any role.
func inConf(cs *raftpb.ConfState, id uint64) bool {
	return containsID(cs.GetVoters(), id) || containsID(cs.GetLearners(), id) ||
		containsID(cs.GetVotersOutgoing(), id) || containsID(cs.GetLearnersNext(), id)
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
