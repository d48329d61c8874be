package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/roomd/roomd/cluster/placement"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// Where an op goes: the owner of its room's partition, here or over a
// link, with retries while the room moves.

// route returns the node serving a room in this node's view: the leader of
// its partition's group, else the partition's preferred replica.
func (c *Cluster) route(roomName string) (part int, owner string) {
	p := placement.PartitionOf(roomName, c.cfg.Partitions)
	if name := c.repl.leaderOf(p); name != "" && (name == c.self || c.aliveNode(name)) {
		return p, name
	}
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	return p, t.Owner(p)
}

// servingErr is nil when this node serves partition p now: its replica
// leads the group, has applied everything committed before its term, and
// its rooms serve here (their presence recovery started).
// c.parts[p] is held (read or write) by the caller.
func (c *Cluster) servingErr(p int) error {
	g := c.repl.group(p)
	if g == nil {
		if c.repl.leaderOf(p) != "" {
			return protocol.NewError(protocol.CodeRoomMoved, "another node leads this room's partition")
		}
		return protocol.NewError(protocol.CodeUnavailable, "this room's partition has no leader now")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return nil
	}
	if g.serving {
		return protocol.NewError(protocol.CodeUnavailable, "this room's partition is starting to serve here")
	}
	return g.notServingLocked()
}

// servesAt reports whether node is where this node would send the room's
// ops now.
func (c *Cluster) servesAt(roomName, node string) bool {
	_, owner := c.route(roomName)
	return owner == node
}

// propose prepares a durable write here and appends its command to the
// partition's log. It returns the waiter for the commit, or, for a write
// that needs none (ephemeral, or a known idempotency key), its result.
func (c *Cluster) propose(roomName string, prepare func() (*room.Command, uint64, error)) (*waiter, uint64, error) {
	var (
		w   *waiter
		seq uint64
	)
	err := c.local(roomName, func() error {
		cmd, s, err := prepare()
		if err != nil || cmd == nil {
			seq = s
			return err
		}
		g := c.repl.group(placement.PartitionOf(roomName, c.cfg.Partitions))
		if g == nil {
			return protocol.NewError(protocol.CodeUnavailable, "this room's partition has no leader now")
		}
		w, err = g.propose(cmd)
		return err
	})
	return w, seq, err
}

// write is propose, then the wait for the commit.
func (c *Cluster) write(ctx context.Context, roomName string, prepare func() (*room.Command, uint64, error)) (uint64, error) {
	w, seq, err := c.propose(roomName, prepare)
	if err != nil || w == nil {
		return seq, err
	}
	return w.wait(ctx)
}

// joinHere joins sub to a room this node serves, creating the room (a
// committed CmdCreate) when it does not exist.
func (c *Cluster) joinHere(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error {
	for {
		err := c.local(req.Room, func() error { return c.rooms.Join(req, sub) })
		if err != room.ErrNoRoom {
			return err
		}
		if _, err := c.write(ctx, req.Room, func() (*room.Command, uint64, error) {
			return room.NewCreate(req.Room), 0, nil
		}); err != nil {
			return err
		}
	}
}

// local runs fn for a room this node owns, with its partition read-locked,
// so that a handoff cannot seal the room halfway through.
func (c *Cluster) local(roomName string, fn func() error) error {
	p := placement.PartitionOf(roomName, c.cfg.Partitions)
	c.parts[p].RLock()
	defer c.parts[p].RUnlock()
	if err := c.servingErr(p); err != nil {
		return err
	}
	return fn()
}

// do runs an op on the room's owner: here, or over the owner's link. It
// retries while the owner is moving or unreachable, up to RetryTimeout.
func (c *Cluster) do(ctx context.Context, op, roomName string, here func() error, there func(l *link, owner string) error) error {
	return c.doAs(ctx, op, roomName, "", here, there)
}

// doAs is do for an op of a member's connection: not_joined from an owner
// while this node holds the member means the room is moving under it (the
// new owner has not seen it re-join yet), and is retried too.
func (c *Cluster) doAs(ctx context.Context, op, roomName, conn string, here func() error, there func(l *link, owner string) error) error {
	deadline := time.Now().Add(c.cfg.RetryTimeout)
	wait := 5 * time.Millisecond
	for {
		_, owner := c.route(roomName)
		var err error
		switch {
		case owner == "":
			err = protocol.NewError(protocol.CodeUnavailable, "no node serves rooms now")
		case owner == c.self:
			err = here()
		default:
			var l *link
			if l, err = c.linkTo(ctx, owner); err == nil {
				err = there(l, owner)
			}
			var moved *movedError
			if errors.As(err, &moved) && moved.leader != "" {
				c.repl.hint(placement.PartitionOf(roomName, c.cfg.Partitions), moved.leader)
			}
			c.cfg.Metrics.Forwarded(op)
		}
		if !retryable(err) && !c.movingMember(err, roomName, conn) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		case <-c.stop:
			return err
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// movingMember reports whether err is a not_joined that can only be
// transient: the edge holds conn's member of the room.
func (c *Cluster) movingMember(err error, roomName, conn string) bool {
	var pe *protocol.Error
	if conn == "" || !errors.As(err, &pe) || pe.Code != protocol.CodeNotJoined {
		return false
	}
	return c.edge.holds(roomName, conn)
}

func retryable(err error) bool {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == protocol.CodeRoomMoved || pe.Code == protocol.CodeUnavailable
}
