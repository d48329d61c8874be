package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// The hooks that report (published, occupied, vacated) are delivered by
// the room's owner, the leader of its partition's group, from what it
// applies as leader:
//   - each message is queued for the backend (Config.Hooks) in seq order;
//   - an occupancy transition is a command of the room's log
//     (room.CmdTransition), proposed by the owner when the room's members
//     disagree with the record and queued once applied;
//   - what the backend acknowledged goes back into the log
//     (room.CmdHookMark), in batches.
//
// A new leader, as it starts serving, queues what the marks say was not
// acknowledged: the held messages after the published mark, the
// transitions after the transition mark. So a message or a transition is
// delivered at least once across a change of owner, and a transition's id
// lets the backend drop the copy.

// hookWork is the hooks' work that must not run where it is noticed (under
// a room's or group's lock): rooms whose occupancy to check, marks to
// propose. One goroutine (hookLoop) does it.
type hookWork struct {
	mu    sync.Mutex
	occ   map[string]bool
	marks map[string]*pendingMark
	wake  chan struct{}
}

// pendingMark is what a room's backend acknowledged since the last mark.
type pendingMark struct {
	epoch     string
	published uint64
	trans     uint64
}

// startHooks wires the hooks to the rooms and starts hookLoop.
func (c *Cluster) startHooks() {
	if c.cfg.Hooks == nil {
		return
	}
	c.hw = &hookWork{occ: map[string]bool{}, marks: map[string]*pendingMark{}, wake: make(chan struct{}, 1)}
	c.rooms.WatchOccupancy(c.occupancyNoted)
	c.cfg.Hooks.OnDelivered(c.hookDelivered)
	c.wg.Add(1)
	go c.hookLoop()
}

// lifecycleOn reports whether occupied or vacated is on for a room.
func (c *Cluster) lifecycleOn(name string) bool {
	return c.cfg.Hooks.On(hooks.Occupied, name) || c.cfg.Hooks.On(hooks.Vacated, name)
}

// occupancyNoted is the rooms' WatchOccupancy: it runs under the room's lock.
func (c *Cluster) occupancyNoted(name string) {
	if !c.lifecycleOn(name) {
		return
	}
	c.hw.mu.Lock()
	c.hw.occ[name] = true
	c.hw.mu.Unlock()
	c.hw.signal()
}

// hookDelivered records an acknowledged event for the next mark.
func (c *Cluster) hookDelivered(ev hooks.Event) {
	c.hw.mu.Lock()
	pm := c.hw.marks[ev.Room()]
	if pm == nil || pm.epoch != ev.Epoch() {
		pm = &pendingMark{epoch: ev.Epoch()}
		c.hw.marks[ev.Room()] = pm
	}
	if ev.Published != nil {
		pm.published = max(pm.published, ev.Pos())
	} else {
		pm.trans = max(pm.trans, ev.Pos())
	}
	c.hw.mu.Unlock()
	c.hw.signal()
}

func (w *hookWork) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// hookLoop proposes transitions and marks. Marks are batched: at most one
// round each markInterval.
func (c *Cluster) hookLoop() {
	defer c.wg.Done()
	const markInterval = 20 * time.Millisecond
	for {
		select {
		case <-c.stop:
			return
		case <-c.hw.wake:
		}
		c.hw.mu.Lock()
		occ, marks := c.hw.occ, c.hw.marks
		c.hw.occ, c.hw.marks = map[string]bool{}, map[string]*pendingMark{}
		c.hw.mu.Unlock()
		for name := range occ {
			c.proposeTransition(name)
		}
		for name, pm := range marks {
			if pm.published > 0 {
				c.proposeMark(name, pm.epoch, room.MarkPublished, pm.published)
			}
			if pm.trans > 0 {
				c.proposeMark(name, pm.epoch, room.MarkTrans, pm.trans)
			}
		}
		select {
		case <-c.stop:
			return
		case <-time.After(markInterval):
		}
	}
}

// proposeTransition records a room's occupancy when its members disagree
// with its record, and waits for the commit (which queues the event). Only
// the room's owner can: elsewhere it does nothing.
func (c *Cluster) proposeTransition(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RetryTimeout)
	defer cancel()
	go func() { // the cluster's stop ends the wait
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := c.write(ctx, name, func() (*room.Command, uint64, error) {
		return c.rooms.PrepareTransition(name), 0, nil
	})
	if err != nil {
		c.log.Debug("occupancy transition not recorded here", slog.String("room", name), slog.Any("err", err))
	}
}

// proposeMark appends a mark to the room's log without waiting: a lost one
// only means a redelivery after a change of owner.
func (c *Cluster) proposeMark(name, epoch, key string, upTo uint64) {
	_, _, _ = c.propose(name, func() (*room.Command, uint64, error) {
		return room.NewHookMark(name, epoch, key, upTo), 0, nil
	})
}

// hookBefore tells whether a command about to be applied as leader may
// make a hook's event, and, for a message, the room's epoch and seq before
// it. g.mu is held.
func (c *Cluster) hookBefore(g *group, cmd *room.Command) (on bool, epoch string, seq uint64) {
	if c.cfg.Hooks == nil || !g.leader {
		return false, "", 0
	}
	switch cmd.Op {
	case room.CmdTransition:
		return true, cmd.Epoch, 0
	case room.CmdMsg:
		if !c.cfg.Hooks.On(hooks.Published, cmd.Room) {
			return false, "", 0
		}
		epoch = cmd.Epoch
		if info, ok := c.rooms.Info(cmd.Room); ok {
			epoch, seq = info.Epoch, info.Seq
		}
		return true, epoch, seq
	}
	return false, "", 0
}

// hookApplied queues the event of a command applied as leader: a new
// message (seq above before) or a transition that applied (n > 0). g.mu is
// held.
func (c *Cluster) hookApplied(cmd *room.Command, epoch string, before, seq uint64) {
	switch cmd.Op {
	case room.CmdMsg:
		if seq <= before {
			return
		}
		c.deliverPublished(cmd.Room, epoch, seq, cmd.User, cmd.Conn, cmd.At, cmd.Data)
	case room.CmdTransition:
		if seq > 0 {
			c.deliverTransition(cmd.Room, cmd.Epoch, seq, cmd.At)
		}
	}
}

// deliverTransition queues transition n of a room's epoch.
func (c *Cluster) deliverTransition(name, epoch string, n uint64, at int64) {
	h := hooks.Vacated
	if n%2 == 1 {
		h = hooks.Occupied
	}
	if !c.cfg.Hooks.On(h, name) {
		// Off for this hook: acknowledged at once, so the mark moves on.
		c.hookDelivered(hooks.Event{Lifecycle: &hooks.RoomEvent{Hook: h, Room: name, Epoch: epoch, N: n}})
		return
	}
	c.cfg.Hooks.Deliver(hooks.Event{Lifecycle: &hooks.RoomEvent{
		Hook: h, Room: name, Epoch: epoch, N: n, ID: epoch + "/" + strconv.FormatUint(n, 10), TS: at,
	}})
}

// redeliverHooks queues what the marks of partition p's rooms say was not
// acknowledged, as its new leader starts serving. g.mu is held.
func (c *Cluster) redeliverHooks(p int) {
	if c.cfg.Hooks == nil {
		return
	}
	match := c.inPartition(p)
	for _, name := range c.rooms.RoomNames() {
		if !match(name) {
			continue
		}
		epoch, st, ok := c.rooms.HookState(name)
		if !ok {
			continue
		}
		if c.cfg.Hooks.On(hooks.Published, name) {
			c.redeliverPublished(name, st.Published)
		}
		if c.lifecycleOn(name) {
			for n := st.TransDone + 1; n <= st.Trans; n++ {
				c.deliverTransition(name, epoch, n, st.TransAt)
			}
		}
	}
}

// redeliverPublished queues a room's held messages after seq since.
func (c *Cluster) redeliverPublished(name string, since uint64) {
	epoch, evs, ok := c.rooms.History(name, since, 0)
	if !ok {
		return
	}
	for _, ev := range evs {
		if ev.Kind == room.KindMsg {
			c.deliverPublished(name, epoch, ev.Seq, ev.User, ev.Conn, ev.TS, ev.Data)
		}
	}
}

// deliverPublished queues a message's published event.
func (c *Cluster) deliverPublished(name, epoch string, seq uint64, user, conn string, ts int64, payload protocol.Raw) {
	data, err := hooks.JSONData(payload)
	if err != nil {
		c.log.Error("published hook: payload", slog.String("room", name), slog.Any("err", err))
		return
	}
	c.cfg.Hooks.Deliver(hooks.Event{Published: &hooks.PublishedEvent{
		Room: name, Epoch: epoch, Seq: seq, User: user, Conn: conn, TS: ts, Data: json.RawMessage(data),
	}})
}
