package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// The edge: this node's local subscribers (WebSocket sessions, SSE feeds),
// each wrapped in a member that stands for it at the room's owner, here or
// on a peer. A member records the last seq it handed on, so that when the
// room moves it re-joins the new owner with since and the subscriber sees a
// pause, never a gap or a duplicate.
//
// Locks: edge.mu and member.mu come after a room's lock and before the
// local subscriber's, and neither is held while calling into rooms or
// links (the whole order: docs/LOCKS.md).

type edge struct {
	c     *Cluster
	mu    sync.Mutex
	rooms map[string]*edgeRoom
	wg    sync.WaitGroup // re-join workers
}

type edgeRoom struct {
	members map[room.Subscriber]*member
	byConn  map[string]*member
	seen    map[string]bool // presence entries this node's members were shown
}

// member is one local subscriber in one room.
type member struct {
	e       *edge
	sub     room.Subscriber
	req     room.JoinRequest // what re-joins send (Presence kept current)
	firstID uint64           // the client's join request id, until its joined arrives

	mu        sync.Mutex
	owner     string // node it is registered at; "" while none
	active    bool   // its joined arrived from that owner
	epoch     string
	last      uint64 // last durable seq handed to sub
	rejoining bool
	joining   bool // the client's own join is under way (Cluster.Join)
	moveLater bool // the room moved during that join: re-join once it ends
	gone      bool
	lost      bool // a re-join found the room restarted (new epoch or reset)
}

var _ room.Subscriber = (*member)(nil)

func newEdge(c *Cluster) *edge { return &edge{c: c, rooms: map[string]*edgeRoom{}} }

func (e *edge) add(req room.JoinRequest, sub room.Subscriber) *member {
	m := &member{e: e, sub: sub, req: req, firstID: req.ID, joining: true}
	m.req.ID = 0 // re-joins carry no client request id
	e.mu.Lock()
	defer e.mu.Unlock()
	er := e.rooms[req.Room]
	if er == nil {
		er = &edgeRoom{members: map[room.Subscriber]*member{}, byConn: map[string]*member{}, seen: map[string]bool{}}
		e.rooms[req.Room] = er
	}
	er.members[sub] = m
	if req.Conn != "" {
		er.byConn[req.Conn] = m
	}
	return m
}

func (e *edge) remove(m *member) {
	m.mu.Lock()
	m.gone = true
	m.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	er := e.rooms[m.req.Room]
	if er == nil || er.members[m.sub] != m {
		return
	}
	delete(er.members, m.sub)
	if er.byConn[m.req.Conn] == m {
		delete(er.byConn, m.req.Conn)
	}
	if len(er.members) == 0 {
		delete(e.rooms, m.req.Room)
	}
}

// removeSub takes sub's member out of a room and returns it.
func (e *edge) removeSub(name string, sub room.Subscriber) *member {
	e.mu.Lock()
	er := e.rooms[name]
	var m *member
	if er != nil {
		m = er.members[sub]
	}
	e.mu.Unlock()
	if m != nil {
		e.remove(m)
	}
	return m
}

func (e *edge) presenceChanged(name, conn string, data protocol.Raw) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if er := e.rooms[name]; er != nil {
		if m := er.byConn[conn]; m != nil {
			m.mu.Lock()
			m.req.Presence = data
			m.mu.Unlock()
		}
	}
}

// holds reports whether conn has a member of the room on this node.
func (e *edge) holds(name, conn string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	er := e.rooms[name]
	return er != nil && er.byConn[conn] != nil
}

// membersAt lists the members of a room registered at owner.
func (e *edge) membersAt(name, owner string) []*member {
	e.mu.Lock()
	defer e.mu.Unlock()
	er := e.rooms[name]
	if er == nil {
		return nil
	}
	out := make([]*member, 0, len(er.members))
	for _, m := range er.members {
		if m.ownerName() == owner {
			out = append(out, m)
		}
	}
	return out
}

// fromLink hands an event from an owner's link to this node's members of
// its room. Addressed events (joined, left) go to one member; the others go
// to every active member registered there, with the room's own exclusions.
func (e *edge) fromLink(l *link, f *linkFrame) {
	switch f.Kind {
	case room.KindJoined, room.KindLeft:
		e.mu.Lock()
		var m *member
		if er := e.rooms[f.R]; er != nil {
			m = er.byConn[f.C]
		}
		e.mu.Unlock()
		if m == nil || m.ownerName() != l.peer {
			return
		}
		ev := &room.Event{Kind: f.Kind, Room: f.R, Epoch: f.Epoch, Code: f.Code, Msg: f.Msg}
		if f.Kind == room.KindJoined {
			j, err := decodeJoined(f.R, f.B)
			if err != nil {
				l.log.Warn("bad joined on peer link", slog.Any("err", err))
				return
			}
			ev.Joined = j
		}
		m.Deliver(ev)
		return
	}
	ev, err := eventFromFrame(f.R, f.Epoch, f.F)
	if err != nil {
		l.log.Warn("bad event on peer link", slog.Any("err", err))
		return
	}
	for _, m := range e.membersAt(f.R, l.peer) {
		if excluded(ev, m.req.Conn) {
			continue
		}
		m.mu.Lock()
		active := m.active
		m.mu.Unlock()
		if active {
			m.Deliver(ev)
		}
	}
}

// excluded applies the room's delivery rule that an owner applies per
// subscriber: an eph is not sent back to its sender. (A pres event goes to
// every member; the subscriber strips the member's own changes, as it does
// for a local owner's: room.Event.Without.)
func excluded(ev *room.Event, conn string) bool {
	return conn != "" && ev.Kind == room.KindEph && ev.Conn == conn
}

func (m *member) setOwner(owner string) {
	if log := m.e.c.log; log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("member registers", slog.String("room", m.req.Room), slog.String("conn", m.req.Conn), slog.String("owner", owner))
	}
	m.mu.Lock()
	m.owner = owner
	m.active = false
	m.mu.Unlock()
}

func (m *member) ownerName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owner
}

// observe keeps the room's presence as this node's members were shown it,
// for re-joins where the room is served anew (room.JoinRequest.Known).
func (e *edge) observe(name string, ev *room.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	er := e.rooms[name]
	if er == nil {
		return
	}
	switch ev.Kind {
	case room.KindJoined:
		if ev.Joined != nil {
			for _, p := range ev.Joined.Presence {
				er.seen[p.C] = true
			}
		}
	case room.KindPres:
		if ev.All != nil {
			clear(er.seen)
			for _, p := range ev.All {
				er.seen[p.C] = true
			}
		}
		for _, p := range ev.Join {
			er.seen[p.C] = true
		}
		for _, c := range ev.Leave {
			delete(er.seen, c)
		}
	}
}

// known lists the presence entries this node's members of a room were
// shown, its own members included.
func (e *edge) known(name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	er := e.rooms[name]
	if er == nil {
		return nil
	}
	out := make([]string, 0, len(er.seen)+len(er.byConn))
	for c := range er.seen {
		out = append(out, c)
	}
	for c := range er.byConn {
		if !er.seen[c] {
			out = append(out, c)
		}
	}
	return out
}

// Deliver implements room.Subscriber: events from a local owner, and from a
// peer's link through fromLink.
func (m *member) Deliver(ev *room.Event) {
	if ev.Kind == room.KindPres || ev.Kind == room.KindJoined {
		m.e.observe(m.req.Room, ev)
	}
	m.mu.Lock()
	skip := m.gone
	if !skip && (ev.Kind == room.KindMsg || ev.Kind == room.KindState) {
		// A durable event at or below the last seq handed on is a duplicate.
		if skip = ev.Epoch == m.epoch && ev.Seq <= m.last; !skip {
			m.last = ev.Seq
		}
	}
	m.mu.Unlock()
	if skip {
		return
	}
	switch ev.Kind {
	case room.KindJoined:
		m.joined(ev)
	case room.KindLeft:
		if ev.Code == protocol.CodeRoomMoved {
			m.moved()
			return
		}
		m.e.remove(m)
		m.sub.Deliver(ev)
	default:
		m.sub.Deliver(ev)
	}
}

// joined handles the answer to a join: the client's own, or a re-join
// after the room moved, whose missed events are handed on as live ones.
func (m *member) joined(ev *room.Event) {
	j := ev.Joined
	m.mu.Lock()
	rejoin := m.rejoining
	m.rejoining = false
	prevEpoch, prevLast := m.epoch, m.last
	// A re-join of a member whose own join was never answered (the room
	// moved meanwhile) answers that join: nothing was handed on yet.
	first := rejoin && prevEpoch == ""
	if first {
		rejoin = false
	}
	lost := rejoin && (j.Reset || j.Epoch != prevEpoch)
	if lost {
		m.gone = true // nothing of the new room reaches the client before its own join
	} else {
		m.active = true
		m.epoch, m.last = j.Epoch, j.Seq
	}
	m.mu.Unlock()
	if !rejoin {
		m.sub.Deliver(ev)
		return
	}
	if lost {
		// Continuity was lost: rejoin (which asked for this join) undoes
		// the registration, then tells the client, which re-joins itself
		// and sees reset. (Nothing here: the room's lock may be held.)
		m.mu.Lock()
		m.lost = true
		m.mu.Unlock()
		m.e.c.log.Warn("room continuity lost on re-join", slog.String("room", ev.Room),
			slog.String("epoch", prevEpoch), slog.String("new_epoch", j.Epoch), slog.Bool("reset", j.Reset))
		return
	}
	for _, le := range j.Log {
		if le.Seq > prevLast {
			m.sub.Deliver(le)
		}
	}
}

// moved starts a re-join at the room's new owner.
func (m *member) moved() {
	m.mu.Lock()
	if log := m.e.c.log; log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("member moves", slog.String("room", m.req.Room), slog.String("conn", m.req.Conn),
			slog.String("owner", m.owner), slog.Bool("gone", m.gone), slog.Bool("rejoining", m.rejoining))
	}
	if m.gone || m.rejoining {
		m.mu.Unlock()
		return
	}
	if m.joining {
		// The client's own join still routes itself (it retries where
		// the room is served now); two joins of one member at once would
		// meet at the owner. If it ends registered where the room moved
		// from, it re-joins then.
		m.moveLater = true
		m.mu.Unlock()
		return
	}
	m.rejoining = true
	m.active = false
	m.owner = ""
	m.mu.Unlock()
	e := m.e
	e.wg.Add(1)
	go e.rejoin(m)
}

// ownerLost re-homes the members registered at a node that is gone or
// whose link dropped.
func (e *edge) ownerLost(owner string) {
	e.mu.Lock()
	var ms []*member
	for _, er := range e.rooms {
		for _, m := range er.members {
			if m.ownerName() == owner {
				ms = append(ms, m)
			}
		}
	}
	e.mu.Unlock()
	for _, m := range ms {
		m.moved()
	}
}

// partitionLed moves the members of the rooms match selects that are
// registered elsewhere than at leader, which now serves those rooms.
func (e *edge) partitionLed(match func(string) bool, leader string) {
	e.mu.Lock()
	var ms []*member
	for name, er := range e.rooms {
		if !match(name) {
			continue
		}
		for _, m := range er.members {
			if o := m.ownerName(); o != "" && o != leader {
				ms = append(ms, m)
			}
		}
	}
	e.mu.Unlock()
	for _, m := range ms {
		m.moved()
	}
}

// rejoin registers m with its room's owner again, resuming from its last
// seq. A member that cannot be re-homed in time is told unavailable.
func (e *edge) rejoin(m *member) {
	defer e.wg.Done()
	c := e.c
	m.mu.Lock()
	req := m.req
	if m.epoch != "" {
		req.Since = &protocol.Since{E: m.epoch, S: m.last}
	} else {
		req.ID = m.firstID // its answer is the client's join's
	}
	m.mu.Unlock()
	req.Known = e.known(req.Room)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RetryTimeout)
	defer cancel()
	err := c.joinAt(ctx, m, req)
	m.mu.Lock()
	gone, lost := m.gone, m.lost
	m.mu.Unlock()
	if gone {
		// The subscriber left meanwhile, or the room restarted (joined has
		// run by now, in this goroutine or the link's, before the answer):
		// undo the registration, and only then tell the client, so that
		// its own re-join cannot meet this one.
		if err == nil {
			c.unregister(req.Room, m, false)
		}
		if lost {
			e.remove(m)
			m.sub.Deliver(&room.Event{Kind: room.KindLeft, Room: req.Room, Code: protocol.CodeRoomMoved, Msg: "room moved; rejoin"})
		}
		return
	}
	if err == nil {
		// Its joined came before the answer (one link, in order) unless
		// an owner it met earlier in the retries answered it: then its
		// re-join is not done.
		m.mu.Lock()
		stuck := m.rejoining
		m.rejoining = false
		m.mu.Unlock()
		if stuck {
			m.moved()
		}
		return
	}
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == protocol.CodeAlreadyJoined {
		// An earlier try of this re-join registered the member there, and
		// its answer was lost: take that registration back (as a dropped
		// connection, so its presence entry waits for the re-join to take
		// it over) and re-join again, in that order on the link.
		c.unregister(req.Room, m, true)
		m.mu.Lock()
		m.rejoining = false
		m.mu.Unlock()
		m.moved()
		return
	}
	c.log.Warn("re-join after a move failed", slog.String("room", req.Room), slog.Any("err", err))
	e.remove(m)
	m.sub.Deliver(&room.Event{Kind: room.KindLeft, Room: req.Room, Code: protocol.CodeUnavailable, Msg: "room unavailable; rejoin"})
}

// unregister takes a member out of its owner's room: at once, or (grace)
// as a dropped connection, whose presence entry stays for the grace.
func (c *Cluster) unregister(name string, m *member, grace bool) {
	op, local := opLeave, c.rooms.Leave
	if grace {
		op, local = opDrop, c.rooms.Drop
	}
	switch owner := m.ownerName(); {
	case owner == c.self:
		local(name, m)
	case owner != "":
		if l := c.linkOf(owner); l != nil {
			l.send(&linkFrame{T: lfRequest, Op: op, R: name, C: m.req.Conn})
		}
	}
}

// moving reports whether a member is re-joining a moved room.
func (e *edge) moving() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, er := range e.rooms {
		for _, m := range er.members {
			m.mu.Lock()
			r := m.rejoining
			m.mu.Unlock()
			if r {
				return true
			}
		}
	}
	return false
}

func (e *edge) wait() {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}
