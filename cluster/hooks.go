package cluster

import (
	"encoding/json"
	"log/slog"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/room"
)

// The published hook is delivered by the room's owner, the leader of its
// partition's group: each message it applies as leader is queued for the
// backend (Config.Hooks), in seq order. A new leader first queues the
// messages the rooms' history holds, since it cannot know which of them the
// old leader delivered: at least once, a duplicate allowed after a change
// of owner, never a message of the retained history lost.

// hookPublished queues a message applied as leader. g.mu is held.
func (c *Cluster) hookPublished(cmd *room.Command, epoch string, seq uint64) {
	data, err := hooks.JSONData(cmd.Data)
	if err != nil {
		c.log.Error("published hook: payload", slog.String("room", cmd.Room), slog.Any("err", err))
		return
	}
	c.cfg.Hooks.Deliver(hooks.Event{Published: &hooks.PublishedEvent{
		Room: cmd.Room, Epoch: epoch, Seq: seq, User: cmd.User, Conn: cmd.Conn, TS: cmd.At, Data: json.RawMessage(data),
	}})
}

// publishedBefore returns the seq and epoch of a room before a message is
// applied as leader, and whether the hook is on for it. g.mu is held.
func (c *Cluster) publishedBefore(g *group, cmd *room.Command) (on bool, epoch string, seq uint64) {
	if cmd.Op != room.CmdMsg || !g.leader || !c.cfg.Hooks.On(hooks.Published, cmd.Room) {
		return false, "", 0
	}
	epoch = cmd.Epoch
	if info, ok := c.rooms.Info(cmd.Room); ok {
		epoch, seq = info.Epoch, info.Seq
	}
	return true, epoch, seq
}

// redeliverPublished queues the held messages of partition p's rooms, as
// its new leader starts serving. g.mu is held.
func (c *Cluster) redeliverPublished(p int) {
	if c.cfg.Hooks == nil {
		return
	}
	match := c.inPartition(p)
	for _, name := range c.rooms.RoomNames() {
		if !match(name) || !c.cfg.Hooks.On(hooks.Published, name) {
			continue
		}
		epoch, evs, ok := c.rooms.History(name, 0, 0)
		if !ok {
			continue
		}
		for _, ev := range evs {
			if ev.Kind != room.KindMsg {
				continue
			}
			data, err := hooks.JSONData(ev.Data)
			if err != nil {
				continue
			}
			c.cfg.Hooks.Deliver(hooks.Event{Published: &hooks.PublishedEvent{
				Room: name, Epoch: epoch, Seq: ev.Seq, User: ev.User, Conn: ev.Conn, TS: ev.TS, Data: json.RawMessage(data),
			}})
		}
	}
}
