package cluster

import (
	"context"
	"errors"
	"github.com/roomd/roomd/protocol"
	"time"
)

// Where an op goes: the owner of its room's partition, here or over a
// link, with retries while the room moves.

// route returns the owner of a room in this node's view.
func (c *Cluster) route(roomName string) (part int, owner string) {
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	return t.OwnerOf(roomName)
}

// serving reports whether this node serves partition p now. c.parts[p]
// is held (read or write) by the caller.
func (c *Cluster) servingErr(p int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table.Owner(p) != c.self {
		return protocol.NewError(protocol.CodeRoomMoved, "this node does not own the room")
	}
	if _, ok := c.pending[p]; ok {
		return protocol.NewError(protocol.CodeUnavailable, "the room is moving here")
	}
	return nil
}

// local runs fn for a room this node owns, with its partition read-locked,
// so that a handoff cannot seal the room halfway through.
func (c *Cluster) local(roomName string, fn func() error) error {
	p := PartitionOf(roomName, c.cfg.Partitions)
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
			err = c.local(roomName, here)
		default:
			var l *link
			if l, err = c.linkTo(ctx, owner); err == nil {
				err = there(l, owner)
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
