package cluster

import (
	"context"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/cluster/placement"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// handleRequest runs a peer's request on this node and returns the answer,
// or nil when the answer comes later (reply sends it): a durable write is
// prepared and proposed here in arrival order, and its commit is waited for
// off the link's reader, which must go on reading (the commit itself needs
// raft messages from the link).
func (c *Cluster) handleRequest(l *link, f *linkFrame, reply func(*linkFrame)) *linkFrame {
	a := &linkFrame{}
	var (
		err  error
		w    *waiter
		then func() error // what follows the commit, before the answer
	)
	switch f.Op {
	case opRooms:
		a.B, err = msgpack.Marshal(c.localRooms(f.R))
	case opLeave, opDrop:
		if s := l.sub(f.R, f.C); s != nil {
			l.removeSub(s)
			if f.Op == opLeave {
				c.rooms.Leave(f.R, s)
			} else {
				c.rooms.Drop(f.R, s)
			}
		}
	case opPub:
		w, a.S, err = c.propose(f.R, func() (*room.Command, uint64, error) {
			return c.rooms.PreparePublish(room.PublishRequest{Room: f.R, Conn: f.C, User: f.U, Data: f.D,
				Ephemeral: f.Eph, Key: f.K, FromAPI: f.API})
		})
	case opSet:
		w, a.S, err = c.propose(f.R, func() (*room.Command, uint64, error) {
			cmd, err := c.rooms.PrepareSet(room.SetRequest{Room: f.R, Conn: f.C, User: f.U, Key: f.K, Value: f.D, FromAPI: f.API})
			return cmd, 0, err
		})
	case opJoin:
		err = c.local(f.R, func() error { return c.ownerOp(l, f, a) })
		if err == room.ErrNoRoom {
			// The room is made first (committed), then joined, off the reader.
			w, _, err = c.propose(f.R, func() (*room.Command, uint64, error) { return room.NewCreate(f.R), 0, nil })
			then = func() error { return c.local(f.R, func() error { return c.ownerOp(l, f, a) }) }
		}
	default:
		err = c.local(f.R, func() error { return c.ownerOp(l, f, a) })
	}
	if w != nil && err == nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RetryTimeout)
			defer cancel()
			seq, err := w.wait(ctx)
			switch {
			case err != nil:
			case then != nil:
				err = then()
			default:
				a.S = seq
			}
			reply(c.answer(f, a, err))
		}()
		return nil
	}
	return c.answer(f, a, err)
}

// answer completes an answer with err, naming the partition's leader as
// this node knows it when the room is served elsewhere.
func (c *Cluster) answer(f *linkFrame, a *linkFrame, err error) *linkFrame {
	if err != nil {
		a.Err = true
		a.Code, a.Msg = linkErr(err)
		if a.Code == protocol.CodeRoomMoved && f.R != "" {
			a.Owner = c.repl.leaderOf(placement.PartitionOf(f.R, c.cfg.Partitions))
		}
	}
	return a
}

// movedError is a room_moved answer that names the node the answering
// node believes leads the room's partition.
type movedError struct {
	err    *protocol.Error
	leader string
}

func (e *movedError) Error() string { return e.err.Error() }
func (e *movedError) Unwrap() error { return e.err }

// ownerOp runs one room op for a peer; the room's partition is read-locked
// and served here.
func (c *Cluster) ownerOp(l *link, f *linkFrame, a *linkFrame) error {
	var err error
	switch f.Op {
	case opJoin:
		s := l.addSub(f.R, f.C)
		err = c.rooms.Join(room.JoinRequest{ID: f.S, Room: f.R, Conn: f.C, User: f.U, Info: f.I,
			Presence: f.P, Since: f.Since, History: f.H, Observer: f.Obs, Known: f.Kn}, s)
		if err != nil {
			l.removeSub(s)
		}
	case opPres:
		err = c.rooms.UpdatePresence(room.PresenceRequest{Room: f.R, Conn: f.C, Data: f.D})
	case opKick:
		a.N = c.rooms.Kick(f.R, f.U, f.Code, f.Msg)
	case opInfo:
		if info, ok := c.rooms.Info(f.R); ok {
			a.N = 1
			a.B, err = msgpack.Marshal(&info)
		}
	case opPresence:
		if members, ok := c.rooms.Presence(f.R); ok {
			a.N = 1
			a.B, err = msgpack.Marshal(members)
		}
	case opState:
		if st, seq, ok := c.rooms.State(f.R); ok {
			a.N = 1
			a.B, err = msgpack.Marshal(&stateWire{State: st, Seq: seq})
		}
	case opHistory:
		if epoch, events, ok := c.rooms.History(f.R, f.S, f.N); ok {
			w := historyWire{Epoch: epoch, Frames: make([][]byte, len(events))}
			for i, ev := range events {
				w.Frames[i] = ev.Frame
			}
			a.N = 1
			a.B, err = msgpack.Marshal(&w)
		}
	default:
		err = protocol.Errorf(protocol.CodeBadRequest, "unknown peer op %q", f.Op)
	}
	return err
}

// announceLeader tells every linked peer that this node now leads
// partition p: their members of its rooms re-join here.
func (c *Cluster) announceLeader(p int) {
	c.mu.Lock()
	links := make([]*link, 0, len(c.links))
	for _, l := range c.links {
		links = append(links, l)
	}
	c.mu.Unlock()
	for _, l := range links {
		l.send(&linkFrame{T: lfLeader, Part: p})
	}
}

// announceServed tells a peer, on a new link, every partition this node
// serves.
func (c *Cluster) announceServed(l *link) {
	for p := range c.cfg.Partitions {
		if c.servingErr(p) == nil {
			l.send(&linkFrame{T: lfLeader, Part: p})
		}
	}
}

// leaderAnnounced records a peer's word that it leads partition p, and
// moves this node's members of the partition's rooms registered elsewhere.
func (c *Cluster) leaderAnnounced(peer string, p int) {
	if p < 0 || p >= c.cfg.Partitions {
		return
	}
	c.repl.hint(p, peer)
	c.edge.partitionLed(c.inPartition(p), peer)
}

// tellRemoved tells a node that its replica id left partition p's group
// by the change at log index.
func (c *Cluster) tellRemoved(node string, p int, id, index uint64) {
	if l := c.linkOf(node); l != nil {
		l.send(&linkFrame{T: lfRemoved, Part: p, S: id, N: int(index)})
	}
}

// inPartition returns a matcher of the room names of partition p.
func (c *Cluster) inPartition(p int) func(string) bool {
	n := c.cfg.Partitions
	return func(name string) bool { return placement.PartitionOf(name, n) == p }
}

// roomIdle proposes the drop of a room that stayed empty (room.Config's
// OnIdle). Where this node does not serve the room, the room stays open.
// Where this node delivers no occupied or vacated hook for the room, the
// drop is forced: a record left unsettled when those hooks were on must not
// keep the room forever.
func (c *Cluster) roomIdle(name, epoch string, seq uint64) {
	g := c.repl.group(placement.PartitionOf(name, c.cfg.Partitions))
	if g == nil {
		c.rooms.Reopen(name, false)
		return
	}
	force := c.hw == nil || !c.lifecycleOn(name)
	if _, err := g.propose(&room.Command{Op: room.CmdDrop, Room: name, Epoch: epoch, Seq: seq, Force: force}); err != nil {
		c.rooms.Reopen(name, false)
	}
}
