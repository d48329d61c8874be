package room

import (
	"bytes"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
	"golang.org/x/time/rate"
)

// room is one room's state machine. Everything below mu is guarded by it; it
// is held briefly, by one writer at a time, and subscribers are called with it
// held.
type room struct {
	m    *Manager
	name string
	ns   Namespace // effective settings, fixed for the room's life

	mu        sync.Mutex
	dead      bool // dropped (idle) or closed; a caller that finds it retries
	epoch     string
	seq       uint64
	subs      map[Subscriber]*attachment
	list      []*attachment      // the same attachments, for fast fan-out
	members   map[string]*member // presence entries by conn, graced ones included
	observers int
	hist      history
	state     state
	dedupe    dedupe
	lim       *rate.Limiter   // the room's publish rate; nil: no limit
	idle      *time.Timer     // armed while the room is empty
	idleGen   uint64          // bumped on every arm and stop; a stale timer sees it changed
	closing   bool            // replicated: its drop is proposed; joins wait
	known     map[string]bool // while recovering: presence entries the re-joining nodes have seen (replica.go)
	recovery  *time.Timer     // ends the recovery; nil when none
	recGen    uint64
	clock     time.Time // the latest command time applied (command.go)
	hooks     HookState // replicated hook record (hookstate.go)
}

// attachment is one subscriber attached to a room, as a member or observer.
type attachment struct {
	sub    Subscriber
	idx    int     // position in room.list
	member *member // nil for an observer
}

// member is one presence entry. att is nil while the entry is in grace (its
// connection dropped and nobody has taken it over yet).
type member struct {
	m     protocol.Member
	att   *attachment
	lim   *rate.Limiter // nil: no per-member rate
	grace *time.Timer
	gen   uint64 // bumped whenever the grace timer is stopped or re-armed
}

func newRoom(m *Manager, name string, ns Namespace) *room {
	var lim *rate.Limiter
	if ns.RoomPublishRate > 0 {
		lim = rate.NewLimiter(rate.Limit(ns.RoomPublishRate), ns.RoomPublishBurst)
	}
	return &room{
		lim:     lim,
		m:       m,
		name:    name,
		ns:      ns,
		epoch:   newEpoch(),
		subs:    make(map[Subscriber]*attachment),
		members: make(map[string]*member),
		hist:    history{max: ns.HistorySize, ttl: ns.HistoryTTL},
		state:   state{node: &m.stateBytes},
		dedupe:  dedupe{window: m.cfg.DedupeWindow, max: m.cfg.DedupeMaxKeys},
	}
}

// Join attaches sub to the room named by req, creating the room if needed.
// Under the room's lock it delivers the KindJoined answer to sub, then attaches
// it, then tells the others about the new member, so nothing can fall between
// the snapshot and the live stream.
//
// A member Join whose Conn has an entry of the same User (in grace, or live
// with another subscriber) takes that entry over: the old subscriber is
// detached silently and the others see at most a presence update. An entry of
// another User is replaced: the others see it leave, then the new one join.
func (m *Manager) Join(req JoinRequest, sub Subscriber) error {
	if err := validName(req.Room); err != nil {
		return err
	}
	if sub == nil {
		return protocol.NewError(protocol.CodeBadRequest, "nil subscriber")
	}
	ns := m.Settings(req.Room)
	if !req.Observer {
		if req.Conn == "" {
			return protocol.NewError(protocol.CodeBadRequest, "a member needs a connection id")
		}
		if len(req.Presence) > ns.MaxPresenceBytes {
			return protocol.Errorf(protocol.CodeTooLarge, "presence data over %d bytes", ns.MaxPresenceBytes)
		}
		if err := protocol.ValidatePayload(req.Presence); err != nil {
			return err
		}
		if err := protocol.ValidatePayload(req.Info); err != nil {
			return err
		}
	}
	c := createdBy(req.User, req.Conn, false)
	if m.cfg.Replicated {
		c = noCreate // a replicated room is made by a command (ErrNoRoom)
	}
	r, err := m.lockRoom(req.Room, c)
	if err != nil {
		return err
	}
	if r == nil {
		if err := m.mayCreate(createdBy(req.User, req.Conn, false)); err != nil {
			return err
		}
		return ErrNoRoom
	}
	defer r.mu.Unlock()
	if r.closing {
		return errClosing
	}
	err = r.join(req, sub)
	r.maybeIdle() // a failed join must not leave a fresh room without its idle timer
	return err
}

// join does Join's work. r.mu is held on entry.
func (r *room) join(req JoinRequest, sub Subscriber) error {
	if _, ok := r.subs[sub]; ok {
		return protocol.Errorf(protocol.CodeAlreadyJoined, "already in room %q", r.name)
	}
	var (
		mem   *member
		after []*Event // presence deltas for the others, once sub is attached
	)
	if !req.Observer {
		d, info := optRaw(req.Presence), optRaw(req.Info)
		old := r.members[req.Conn]
		switch {
		case old != nil && old.m.U == req.User: // takeover: no leave/join flicker
			if old.att != nil {
				r.detach(old.att)
			}
			old.stopGrace()
			changed := !bytes.Equal(old.m.D, d) || !bytes.Equal(old.m.I, info)
			old.m.D, old.m.I = d, info
			mem = old
			if changed {
				after = append(after, r.presEvent(nil, nil, []protocol.Member{mem.m}))
			}
		case old != nil: // same conn id, another user: the old entry leaves
			if old.att != nil {
				r.detach(old.att)
			}
			old.stopGrace()
			delete(r.members, req.Conn)
			after = append(after, r.presEvent(nil, []string{req.Conn}, nil))
			mem = r.addMember(req, d, info)
			after = append(after, r.presEvent([]protocol.Member{mem.m}, nil, nil))
		default:
			if r.ns.MaxMembers > 0 && len(r.members) >= r.ns.MaxMembers {
				return protocol.Errorf(protocol.CodeRoomFull, "room %q is full (%d members)", r.name, r.ns.MaxMembers)
			}
			mem = r.addMember(req, d, info)
			after = append(after, r.presEvent([]protocol.Member{mem.m}, nil, nil))
		}
	}
	r.stopIdle()
	if r.recovery != nil {
		for _, c := range req.Known {
			r.known[c] = true
		}
	}

	sub.Deliver(&Event{Kind: KindJoined, Room: r.name, Epoch: r.epoch, Joined: r.joined(req)})
	att := &attachment{sub: sub, idx: len(r.list), member: mem}
	r.subs[sub] = att
	r.list = append(r.list, att)
	if mem != nil {
		mem.att = att
	} else {
		r.observers++
	}
	for _, ev := range after {
		if ev != nil {
			r.deliver(ev, att)
		}
	}
	if mem != nil {
		r.occupancyChanged()
	}
	return nil
}

// joined builds the answer to a join. r.mu is held on entry.
func (r *room) joined(req JoinRequest) *Joined {
	r.hist.prune(r.m.now())
	j := &Joined{ID: req.ID, Epoch: r.epoch, Seq: r.seq, Presence: r.presenceSnapshot()}
	if s := req.Since; s != nil && s.E == r.epoch {
		if log, ok := r.hist.after(s.S, r.seq); ok {
			j.Log = log
			return j
		}
	}
	j.Reset = true
	j.State = r.state.snapshot()
	j.Log = r.hist.lastMsgs(req.History)
	return j
}

// addMember creates and registers a presence entry. r.mu is held on entry.
func (r *room) addMember(req JoinRequest, d, info protocol.Raw) *member {
	mem := &member{m: protocol.Member{C: req.Conn, U: req.User, D: d, I: info}}
	if r.ns.PublishRate > 0 {
		mem.lim = rate.NewLimiter(rate.Limit(r.ns.PublishRate), r.ns.PublishBurst)
	}
	r.members[req.Conn] = mem
	return mem
}

// detach removes an attachment from the room's subscribers; a member's entry
// stays (the caller decides its fate). r.mu is held on entry.
func (r *room) detach(att *attachment) {
	delete(r.subs, att.sub)
	last := len(r.list) - 1
	r.list[att.idx] = r.list[last]
	r.list[att.idx].idx = att.idx
	r.list[last] = nil
	r.list = r.list[:last]
	if att.member != nil {
		if att.member.att == att {
			att.member.att = nil
		}
	} else {
		r.observers--
	}
}

// live returns the entry of conn if it is attached (not in grace). r.mu is
// held on entry.
func (r *room) live(conn string) *member {
	if mem := r.members[conn]; mem != nil && mem.att != nil {
		return mem
	}
	return nil
}

// deliver hands ev to every subscriber but except (which may be nil), in the
// room's order. r.mu is held on entry.
func (r *room) deliver(ev *Event, except *attachment) {
	for _, a := range r.list {
		if a != except {
			a.sub.Deliver(ev)
		}
	}
}

// lockForWrite locks the room a publish or state change goes to and finds
// the member writing: a member's write needs the room live and the member in
// it; an API write to a room that does not exist yet finds r nil (its
// command makes the room, once the node's room budget allows). On success
// r.mu is held when r is not nil (from is nil for the API).
func (m *Manager) lockForWrite(name, conn string, fromAPI bool) (r *room, from *member, err error) {
	r, err = m.lockRoom(name, noCreate)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		if !fromAPI {
			return nil, nil, notJoined(name)
		}
		return nil, nil, m.mayCreate(createdBy("", "", true))
	}
	if fromAPI {
		return r, nil, nil
	}
	if from = r.live(conn); from == nil {
		r.mu.Unlock()
		return nil, nil, notJoined(name)
	}
	return r, from, nil
}

// Publish appends a message to the room's log and delivers it; an ephemeral
// one is only delivered (to everyone but the sender) and gets seq 0. A durable
// publish whose Key was seen within the dedupe window returns the original seq
// and delivers nothing. It is PreparePublish and Apply in one call, for a
// Manager that is not replicated.
func (m *Manager) Publish(req PublishRequest) (uint64, error) {
	for {
		cmd, seq, err := m.PreparePublish(req)
		if err != nil || cmd == nil {
			return seq, err
		}
		if seq, err = m.Apply(cmd); err != errStale {
			return seq, err
		}
	}
}

// appendLog records a durable event in history and delivers it to everyone.
// r.mu is held on entry.
func (r *room) appendLog(ev *Event, now time.Time) {
	r.hist.prune(now)
	r.hist.push(ev)
	r.deliver(ev, nil)
}

// allow applies the publish rates to a write by from (nil: the API): the
// member's own, then the room's. The member's comes first, so a member over
// its own rate does not spend the room's. r.mu is held on entry.
func (r *room) allow(from *member, now time.Time) error {
	if from != nil && from.lim != nil && !from.lim.AllowN(now, 1) {
		return protocol.NewError(protocol.CodeRateLimited, "publish rate exceeded in this room")
	}
	if r.lim != nil && !r.lim.AllowN(now, 1) {
		return protocol.NewError(protocol.CodeRateLimited, "this room's publish rate is exceeded")
	}
	return nil
}

func notJoined(room string) error {
	return protocol.Errorf(protocol.CodeNotJoined, "not joined to room %q", room)
}

func (r *room) info() Info {
	return Info{Room: r.name, Epoch: r.epoch, Seq: r.seq, Members: len(r.members), Observers: r.observers}
}

func (r *room) empty() bool { return len(r.members) == 0 && r.observers == 0 }

// maybeIdle arms the idle timer if the room is empty and it is not armed.
// r.mu is held on entry.
func (r *room) maybeIdle() {
	if r.empty() && r.idle == nil && !r.dead {
		r.armIdle(r.ns.IdleTTL)
	}
}

// touch restarts the idle timer of an empty room: an API write keeps a room
// without members alive for another IdleTTL, and so does any durable
// change applied to it. r.mu is held on entry.
func (r *room) touch() {
	if r.empty() && !r.dead {
		r.armIdle(r.ns.IdleTTL)
	}
}

// emptied is maybeIdle for a room its last member or observer just left. A
// room that holds nothing durable (no history, no state) is dropped at once
// instead (replicated: within hollowTTL, by a command like any drop): a new
// one would be the same, and a client that came back would only see a new
// epoch with nothing to lose. r.mu is held on entry.
func (r *room) emptied() {
	if !r.empty() || r.dead {
		return
	}
	if r.hist.n > 0 || len(r.state.kv) > 0 {
		r.maybeIdle()
		return
	}
	if r.m.cfg.OnIdle == nil {
		r.kill()
		r.m.remove(r) // room.mu -> Manager.mu, the documented order
		return
	}
	r.armIdle(min(r.ns.IdleTTL, hollowTTL))
}

// armIdle (re)starts the idle timer with ttl. r.mu is held on entry.
func (r *room) armIdle(ttl time.Duration) {
	r.stopIdle()
	gen := r.idleGen
	r.idle = time.AfterFunc(ttl, func() { r.idleExpired(gen) })
}

// hollowTTL is how long a replicated room that holds nothing durable stays
// once empty.
const hollowTTL = time.Second

// stopIdle stops the idle timer; a callback already on its way sees idleGen
// changed and does nothing. r.mu is held on entry.
func (r *room) stopIdle() {
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
	r.idleGen++
}

func (r *room) idleExpired(gen uint64) {
	r.mu.Lock()
	if r.dead || gen != r.idleGen || !r.empty() {
		r.mu.Unlock()
		return
	}
	r.idle = nil
	if hook := r.m.cfg.OnIdle; hook != nil {
		// Replicated: the drop is a command, proposed by the node serving
		// the room; joins wait until it is applied or given up (Reopen).
		r.closing = true
		name, epoch, seq := r.name, r.epoch, r.seq
		r.mu.Unlock()
		hook(name, epoch, seq)
		return
	}
	r.kill()
	r.m.remove(r) // room.mu -> Manager.mu, the documented order
	r.mu.Unlock()
}

// kill marks the room dead, stops its timers and lets go of what it holds.
// r.mu is held on entry.
func (r *room) kill() {
	r.dead = true
	r.stopIdle()
	r.stopRecovery()
	for _, mem := range r.members {
		mem.stopGrace()
	}
	r.subs, r.list, r.members = nil, nil, nil
	r.observers = 0
	r.hist = history{}
	r.state.release()
	r.state = state{}
	r.dedupe = dedupe{}
}

// optRaw returns a private copy of an optional value (presence data, token
// info), nil when absent or msgpack nil. The room keeps it for as long as the
// entry lives, so it never aliases a caller's (possibly reused) buffer.
func optRaw(p protocol.Raw) protocol.Raw {
	if p.IsNil() {
		return nil
	}
	return bytes.Clone(p)
}
