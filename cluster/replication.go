package cluster

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/cluster/placement"
)

// Replication: every partition is a consensus group (etcd raft) over its R
// replicas, the top R serving members by HRW. The group's leader serves the
// partition's rooms; a durable change is a room.Command proposed to the
// group and applied, in log order, by every replica. Raft messages ride the
// peer links, batched per peer. See docs/OPERATIONS.md, "Cluster".

// Timing is the raft clock of a node. Every node of a cluster should use
// the same.
type Timing struct {
	// Tick is one raft tick. Zero means 100 ms.
	Tick time.Duration
	// ElectionTicks is how many ticks a follower waits without hearing
	// from a leader before it stands for election (randomised up to twice
	// that). Zero means 10.
	ElectionTicks int
	// HeartbeatTicks is how many ticks a leader waits between heartbeats.
	// Zero means 2.
	HeartbeatTicks int
}

func (t Timing) filled() Timing {
	if t.Tick <= 0 {
		t.Tick = 100 * time.Millisecond
	}
	if t.ElectionTicks <= 0 {
		t.ElectionTicks = 10
	}
	if t.HeartbeatTicks <= 0 {
		t.HeartbeatTicks = 2
	}
	return t
}

// FastTiming is a quicker raft clock for tests and low-latency networks:
// a dead leader is replaced within about a second.
var FastTiming = Timing{Tick: 50 * time.Millisecond, ElectionTicks: 8, HeartbeatTicks: 2}

// replicaID is the raft ID of a node's replica in every group: a hash of
// its name and incarnation, so that a node that restarts (with an empty
// memory) is a new replica, never its old self.
func replicaID(name string, incarnation int64) uint64 {
	h := placement.HashString(name)
	for i := range 8 {
		h ^= uint64(byte(uint64(incarnation) >> (8 * i)))
		h *= 1099511628211
	}
	if h = placement.Mix(h); h != 0 {
		return h
	}
	return 1
}

// replication runs this node's replicas.
type replication struct {
	c      *Cluster
	id     uint64
	timing Timing

	mu     sync.Mutex        // a leaf: taken under group.mu, never held across a call (docs/LOCKS.md)
	groups []*group          // by partition; nil where this node has no replica
	names  map[uint64]string // replica ID -> node name, of the members known
	hints  map[int]string    // partition -> leader named by a peer
	queue  chan *group       // groups with work; each is in it at most once
	closed bool
}

func newReplication(c *Cluster, incarnation int64, timing Timing) *replication {
	r := &replication{
		c: c, id: replicaID(c.self, incarnation), timing: timing.filled(),
		groups: make([]*group, c.cfg.Partitions),
		names:  map[uint64]string{},
		hints:  map[int]string{},
		queue:  make(chan *group, c.cfg.Partitions),
	}
	r.names[r.id] = c.self
	return r
}

// start runs the ticker and the workers that process the groups.
func (r *replication) start(workers int) {
	r.c.wg.Add(1 + workers)
	go r.tickLoop()
	for range workers {
		go r.workLoop()
	}
}

// bootstrap creates this node's replica of every partition whose first
// configuration (peers, by partition) includes it. The replica ranked first
// campaigns at once, so a new group has a leader without waiting an
// election timeout.
func (r *replication) bootstrap(peers func(p int) []uint64, first func(p int) bool) {
	for p := range r.c.cfg.Partitions {
		ids := peers(p)
		if !containsID(ids, r.id) {
			continue
		}
		r.mu.Lock()
		if r.groups[p] != nil {
			r.mu.Unlock()
			continue
		}
		g, err := newGroup(r, p, ids)
		if err != nil {
			r.mu.Unlock()
			r.c.log.Error("bootstrap a partition", slog.Int("partition", p), slog.Any("err", err))
			continue
		}
		r.groups[p] = g
		r.mu.Unlock()
		if first(p) {
			g.mu.Lock()
			_ = g.rn.Campaign()
			single := len(ids) == 1
			g.mu.Unlock()
			if single {
				r.elect(g)
				continue
			}
		}
		r.schedule(g)
	}
}

// elect processes a group of one voter until it serves (a few Readies: no
// message needs to travel), so that a lone node serves from its start.
func (r *replication) elect(g *group) {
	out := &outbox{r: r, byPeer: map[string][]raftWire{}}
	for range 8 {
		r.handle(g, g.process(out))
		g.mu.Lock()
		serving := g.serving
		g.mu.Unlock()
		if serving {
			return
		}
	}
	r.schedule(g)
}

// all returns this node's replicas.
func (r *replication) all() []*group {
	r.mu.Lock()
	defer r.mu.Unlock()
	gs := make([]*group, 0, len(r.groups))
	for _, g := range r.groups {
		if g != nil {
			gs = append(gs, g)
		}
	}
	return gs
}

// group returns this node's replica of partition p, or nil.
func (r *replication) group(p int) *group {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.groups[p]
}

// schedule queues g for a worker unless it is queued already.
func (r *replication) schedule(g *group) {
	if g.work.CompareAndSwap(false, true) {
		select {
		case r.queue <- g:
		default: // cannot happen: the queue holds every group once
			g.work.Store(false)
		}
	}
}

func (r *replication) tickLoop() {
	defer r.c.wg.Done()
	t := time.NewTicker(r.timing.Tick)
	defer t.Stop()
	for {
		select {
		case <-r.c.stop:
			return
		case <-t.C:
		}
		asleep := map[string][]quiesceWire{}
		for _, g := range r.all() {
			ready, quiesce := g.tick()
			if ready {
				r.schedule(g)
			}
			if quiesce {
				g.mu.Lock()
				q := quiesceWire{P: g.p, T: g.term, L: g.id}
				for _, id := range slices.Concat(g.cs.GetVoters(), g.cs.GetLearners()) {
					if name := r.nameOf(id); id != g.id && name != "" {
						asleep[name] = append(asleep[name], q)
					}
				}
				g.mu.Unlock()
			}
		}
		for name, qs := range asleep {
			if l := r.c.linkOf(name); l != nil {
				l.send(&linkFrame{T: lfQuiesce, Q: qs})
			}
		}
	}
}

// workLoop processes groups with work: it takes what is queued, processes
// each, and sends the raft messages they made, one batch per peer.
func (r *replication) workLoop() {
	defer r.c.wg.Done()
	out := &outbox{r: r, byPeer: map[string][]raftWire{}}
	for {
		var g *group
		select {
		case <-r.c.stop:
			return
		case g = <-r.queue:
		}
		for n := 0; g != nil && n < 64; n++ {
			g.work.Store(false)
			r.handle(g, g.process(out))
			select {
			case g = <-r.queue:
			default:
				g = nil
			}
		}
		if g != nil {
			g.work.Store(false)
			r.handle(g, g.process(out))
		}
		out.flush()
	}
}

// handle acts on what process found changed, with no group lock held.
func (r *replication) handle(g *group, t transition) {
	match := r.c.inPartition(g.p)
	if t.unserved {
		// Subscribers re-join wherever the partition is served now; the
		// write lock waits for every op that checked this node serves it.
		r.c.parts[g.p].Lock()
		r.c.rooms.Evict(match)
		r.c.parts[g.p].Unlock()
		r.c.cfg.Metrics.LeaderChanged()
	}
	if t.served {
		// Ops are taken only from here: a join taken before Serve would
		// meet no presence recovery, and its member's report of who was
		// there (JoinRequest.Known) would be lost.
		r.c.rooms.Serve(match)
		g.mu.Lock()
		if g.serving && !g.removed && g.servedN == t.servedN {
			g.open = true
		}
		g.mu.Unlock()
		r.c.announceLeader(g.p)
		r.c.cfg.Metrics.LeaderChanged()
	}
	if t.removed {
		g.mu.Lock()
		lead := g.lead
		g.mu.Unlock()
		r.mu.Lock()
		if r.groups[g.p] == g {
			r.groups[g.p] = nil
		}
		if name := r.names[lead]; name != "" && lead != r.id {
			r.hints[g.p] = name
		}
		r.mu.Unlock()
		r.c.parts[g.p].Lock()
		_ = r.c.rooms.Restore(match, nil) // this node keeps nothing of the partition
		r.c.parts[g.p].Unlock()
		r.c.log.Info("replica left its group", slog.Int("partition", g.p))
	}
}

// raftWire is one raft message on a peer link, with its partition.
type raftWire struct {
	P int    `msgpack:"p"`
	M []byte `msgpack:"m"`
}

// outbox gathers a worker's raft messages per peer.
type outbox struct {
	r      *replication
	byPeer map[string][]raftWire
	unsent []unsent
}

type unsent struct {
	p    int
	to   uint64
	snap bool
}

func (o *outbox) add(p int, msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		name := o.r.nameOf(to)
		snap := m.GetType() == raftpb.MsgSnap
		if name == "" {
			o.unsent = append(o.unsent, unsent{p, to, snap})
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			continue
		}
		o.byPeer[name] = append(o.byPeer[name], raftWire{P: p, M: b})
		if snap {
			// The link either delivers it or fails; a failed link makes
			// the leader send the snapshot again.
			o.unsent = append(o.unsent, unsent{p: p, to: to, snap: true})
		}
	}
}

func (o *outbox) flush() {
	for name, msgs := range o.byPeer {
		l := o.r.c.linkOf(name)
		if l == nil {
			for _, w := range msgs {
				var m raftpb.Message
				if proto.Unmarshal(w.M, &m) == nil {
					o.unsent = append(o.unsent, unsent{w.P, m.GetTo(), m.GetType() == raftpb.MsgSnap})
				}
			}
		} else {
			l.send(&linkFrame{T: lfRaft, RM: msgs})
		}
		delete(o.byPeer, name)
	}
	for _, u := range o.unsent {
		g := o.r.group(u.p)
		if g == nil {
			continue
		}
		g.mu.Lock()
		if u.snap {
			g.rn.ReportSnapshot(u.to, snapStatus(o.r.nameOf(u.to) != "" && o.r.c.linkOf(o.r.nameOf(u.to)) != nil))
		} else {
			g.rn.ReportUnreachable(u.to)
		}
		g.mu.Unlock()
	}
	o.unsent = o.unsent[:0]
}

// receive steps the raft messages a peer sent. A message for a partition
// this node has no replica of creates one (its leader added this node to
// the group); one addressed to another replica ID (this node's previous
// incarnation) is dropped.
func (r *replication) receive(msgs []raftWire) {
	for _, w := range msgs {
		if w.P < 0 || w.P >= len(r.groups) {
			continue
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(w.M, m); err != nil || m.GetTo() != r.id {
			continue
		}
		g := r.group(w.P)
		if g == nil {
			var err error
			r.mu.Lock()
			if g = r.groups[w.P]; g == nil && !r.closed {
				if g, err = newGroup(r, w.P, nil); err == nil {
					r.groups[w.P] = g
				}
			}
			r.mu.Unlock()
			if g == nil {
				continue
			}
		}
		g.step(m)
	}
}

// nameOf returns the node name of a replica ID, "" if unknown.
func (r *replication) nameOf(id uint64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[id]
}

// setMembers records the replica IDs of the known members.
func (r *replication) setMembers(nodes []membership.Node) {
	names := map[uint64]string{r.id: r.c.self}
	for _, n := range nodes {
		if n.Name != r.c.self {
			names[replicaID(n.Name, n.Meta.Incarnation)] = n.Name
		}
	}
	r.mu.Lock()
	r.names = names
	r.mu.Unlock()
}

// leaderOf names the node leading partition p, as far as this node knows:
// its own replica's view, where it is a member of the group, else what a
// peer announced; "" when unknown. (A replica outside the configuration,
// one made by a message that was on its way when it was removed, hears
// from no leader: its view would go stale.)
func (r *replication) leaderOf(p int) string {
	if g := r.group(p); g != nil {
		g.mu.Lock()
		lead, member := g.lead, !g.removed && inConf(g.cs, g.id)
		g.mu.Unlock()
		if lead != 0 && member {
			if name := r.nameOf(lead); name != "" {
				return name
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hints[p]
}

// hint records a peer's word on who leads a partition.
func (r *replication) hint(p int, leader string) {
	r.mu.Lock()
	r.hints[p] = leader
	r.mu.Unlock()
}

func (r *replication) close() {
	r.mu.Lock()
	r.closed = true
	gs := slices.Clone(r.groups) // bootstrap may still be filling it
	r.mu.Unlock()
	for _, g := range gs {
		if g != nil {
			g.mu.Lock()
			g.failWaitersLocked(errLinkClosed)
			g.mu.Unlock()
		}
	}
}

// raftLogger sends raft's own logs to slog: its info and warnings (one per
// group, so hundreds at once) at debug level.
type raftLogger struct{ log *slog.Logger }

func (l *raftLogger) Debug(v ...any)                 {}
func (l *raftLogger) Debugf(format string, v ...any) {}
func (l *raftLogger) Info(v ...any)                  { l.log.Debug("raft: " + fmt.Sprint(v...)) }
func (l *raftLogger) Infof(format string, v ...any) {
	l.log.Debug("raft: " + fmt.Sprintf(format, v...))
}
func (l *raftLogger) Warning(v ...any) { l.log.Debug("raft: " + fmt.Sprint(v...)) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.log.Debug("raft: " + fmt.Sprintf(format, v...))
}
func (l *raftLogger) Error(v ...any) { l.log.Error("raft: " + fmt.Sprint(v...)) }
func (l *raftLogger) Errorf(format string, v ...any) {
	l.log.Error("raft: " + fmt.Sprintf(format, v...))
}
func (l *raftLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l *raftLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (l *raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l *raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }

// counts returns how many groups this node leads and follows.
func (r *replication) counts() (led, followed int) {
	s := r.stats()
	return s.led, s.followed
}

type replStats struct {
	led, followed, asleep int
	lag                   uint64 // the most entries a replica of a group this node leads is behind
}

// stats counts this node's replicas by role, and those asleep.
func (r *replication) stats() (s replStats) {
	for _, g := range r.all() {
		g.mu.Lock()
		if g.leader {
			s.led++
			if last, err := g.st.LastIndex(); err == nil {
				g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
					if last > pr.Match {
						s.lag = max(s.lag, last-pr.Match)
					}
				})
			}
		} else if !g.removed {
			s.followed++
		}
		if g.quiesced {
			s.asleep++
		}
		g.mu.Unlock()
	}
	return s
}

// led returns how many groups this node leads.
func (r *replication) led() int {
	n, _ := r.counts()
	return n
}

// settled reports whether partition p needs no move that this node can
// see: where this node leads it, it is the preferred replica (want[0]) and
// the group's voters are exactly want.
func (r *replication) settled(p int, want []uint64) bool {
	g := r.group(p)
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.leader {
		return true
	}
	if len(want) > 0 && want[0] != g.id {
		return false
	}
	v := g.cs.GetVoters()
	if len(v) != len(want) || len(g.cs.GetLearners()) > 0 || len(g.cs.GetVotersOutgoing()) > 0 {
		return false
	}
	for _, id := range want {
		if !containsID(v, id) {
			return false
		}
	}
	return true
}

func snapStatus(ok bool) raft.SnapshotStatus {
	if ok {
		return raft.SnapshotFinish
	}
	return raft.SnapshotFailure
}

// removedFrom drops this node's replica of partition p when it is replica
// id, which the group's leader (on node leader) removed by the change at
// log index. A replica that has applied that index knows its configuration
// better: it stays if it is in it (it was added back since, and made anew,
// or it applied its return).
func (r *replication) removedFrom(p int, id, index uint64, leader string) {
	if id != r.id {
		return
	}
	g := r.group(p)
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.applied >= index && inConf(g.cs, g.id) {
		g.mu.Unlock()
		return
	}
	g.removed = true
	wasServing := g.serving
	g.serving, g.open = false, false
	g.failWaitersLocked(errLeaderMoved)
	g.mu.Unlock()
	r.hint(p, leader)
	r.handle(g, transition{removed: true, unserved: wasServing})
}
