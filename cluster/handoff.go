package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// handOff moves the rooms of a partition this node lost to its new owner:
// with the partition write-locked (no op of this node is halfway through
// one of its rooms), each room is sealed and exported; then the snapshots
// go to the new owner, and finally "done", after which it serves them.
func (c *Cluster) handOff(mv Move) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		c.handoffs--
		c.mu.Unlock()
	}()
	var snaps []*room.Snapshot
	c.parts[mv.Partition].Lock()
	for _, name := range c.rooms.RoomNames() {
		if PartitionOf(name, c.cfg.Partitions) != mv.Partition {
			continue
		}
		if snap, ok := c.rooms.Export(name); ok {
			snaps = append(snaps, snap)
		}
	}
	c.parts[mv.Partition].Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RetryTimeout)
	defer cancel()
	for _, snap := range snaps {
		b, err := snap.MarshalMsgpack()
		if err == nil {
			err = c.sendTo(ctx, mv.To, &linkFrame{Op: opInstall, R: snap.Room, Part: mv.Partition, B: b})
		}
		if err != nil {
			// The room's continuity is lost: its new owner starts it with a
			// new epoch and its members get reset.
			c.log.Error("room handoff failed", slog.String("room", snap.Room), slog.String("to", mv.To), slog.Any("err", err))
		}
	}
	if err := c.sendTo(ctx, mv.To, &linkFrame{Op: opDone, Part: mv.Partition}); err != nil {
		c.log.Warn("partition handoff not confirmed", slog.Int("partition", mv.Partition), slog.String("to", mv.To), slog.Any("err", err))
	}
	c.cfg.Metrics.HandedOver("out", len(snaps))
	if len(snaps) > 0 {
		c.log.Info("handed rooms over", slog.Int("partition", mv.Partition), slog.String("to", mv.To), slog.Int("rooms", len(snaps)))
	}
}

// sendTo calls a node, retrying while its link comes up.
func (c *Cluster) sendTo(ctx context.Context, node string, f *linkFrame) error {
	for {
		l, err := c.linkTo(ctx, node)
		if err == nil {
			g := *f
			_, err = l.call(ctx, &g)
		}
		if err == nil || !retryable(err) || ctx.Err() != nil || !c.aliveNode(node) {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// handleRequest runs a peer's request on this node (the owner) and builds
// the answer. It runs in the link's reader, in arrival order.
func (c *Cluster) handleRequest(l *link, f *linkFrame) *linkFrame {
	a := &linkFrame{}
	var err error
	switch f.Op {
	case opInstall:
		err = c.install(f)
	case opDone:
		c.handoverDone(l.peer, f.Part)
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
	default:
		err = c.local(f.R, func() error { return c.ownerOp(l, f, a) })
	}
	if err != nil {
		a.Err = true
		a.Code, a.Msg = linkErr(err)
	}
	return a
}

// ownerOp runs one room op for a peer; the room's partition is read-locked
// and served here.
func (c *Cluster) ownerOp(l *link, f *linkFrame, a *linkFrame) error {
	var err error
	switch f.Op {
	case opJoin:
		s := l.addSub(f.R, f.C)
		err = c.rooms.Join(room.JoinRequest{ID: f.S, Room: f.R, Conn: f.C, User: f.U, Info: f.I,
			Presence: f.P, Since: f.Since, History: f.H, Observer: f.Obs}, s)
		if err != nil {
			l.removeSub(s)
		}
	case opPub:
		a.S, err = c.rooms.Publish(room.PublishRequest{Room: f.R, Conn: f.C, User: f.U, Data: f.D,
			Ephemeral: f.Eph, Key: f.K, FromAPI: f.API})
	case opSet:
		a.S, err = c.rooms.SetState(room.SetRequest{Room: f.R, Conn: f.C, User: f.U, Key: f.K, Value: f.D, FromAPI: f.API})
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

// install takes a room handed over by its previous owner.
func (c *Cluster) install(f *linkFrame) error {
	snap, err := room.DecodeSnapshot(f.B)
	if err != nil {
		return err
	}
	p := PartitionOf(snap.Room, c.cfg.Partitions)
	c.parts[p].Lock()
	defer c.parts[p].Unlock()
	if err := c.rooms.Install(snap); err != nil {
		return protocol.Errorf(protocol.CodeInternal, "install %s: %v", snap.Room, err)
	}
	c.cfg.Metrics.HandedOver("in", 1)
	return nil
}

// handoverDone records that a node finished handing a partition over.
func (c *Cluster) handoverDone(from string, p int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[p] == from {
		delete(c.pending, p)
		return
	}
	c.dones[p] = doneMark{from: from, at: time.Now()} // before this node saw the move
}
