package room

import (
	"slices"
	"strings"
	"time"

	"github.com/roomd/roomd/protocol"
)

// UpdatePresence replaces a live member's presence data; the other
// subscribers get a presence update.
func (m *Manager) UpdatePresence(req PresenceRequest) error {
	if err := validName(req.Room); err != nil {
		return err
	}
	ns := m.Settings(req.Room)
	if ns.NoPresence {
		return protocol.Errorf(protocol.CodeForbidden, "presence is off in room %q", req.Room)
	}
	if len(req.Data) > ns.MaxPresenceBytes {
		return protocol.Errorf(protocol.CodeTooLarge, "presence data over %d bytes", ns.MaxPresenceBytes)
	}
	if err := protocol.ValidatePayload(req.Data); err != nil {
		return err
	}
	r, err := m.lockRoom(req.Room, noCreate)
	if err != nil {
		return err
	}
	if r == nil {
		return notJoined(req.Room)
	}
	defer r.mu.Unlock()
	mem := r.live(req.Conn)
	if mem == nil {
		return notJoined(req.Room)
	}
	mem.m.D = optRaw(req.Data) // replaced, never mutated: snapshots share the old slice
	if ev := r.presEvent(nil, nil, []protocol.Member{mem.m}); ev != nil {
		r.deliver(ev, mem.att)
	}
	return nil
}

// Leave detaches sub from the room at once; if it was a member, the others
// are told it left. Leaving a room one is not in does nothing.
func (m *Manager) Leave(room string, sub Subscriber) {
	m.detach(room, sub, false)
}

// Drop detaches sub because its connection was lost: it gets nothing more,
// but its presence entry stays for Config.PresenceGrace (a Join with the same
// Conn and User within it takes the entry over without a flicker); the leave
// is broadcast when the grace ends.
func (m *Manager) Drop(room string, sub Subscriber) {
	m.detach(room, sub, true)
}

func (m *Manager) detach(room string, sub Subscriber, grace bool) {
	if sub == nil {
		return
	}
	r := m.lockLive(room)
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	att := r.subs[sub]
	if att == nil {
		return
	}
	r.detach(att)
	if mem := att.member; mem != nil {
		if grace && m.grace > 0 {
			r.startGrace(mem)
		} else {
			r.removeMember(mem)
		}
	}
	r.emptied()
}

// startGrace keeps a dropped member's entry for the presence grace. r.mu is
// held on entry.
func (r *room) startGrace(mem *member) { r.armGrace(mem, r.m.grace) }

// armGrace (re)starts the entry's grace timer with duration d: when it ends
// with nobody attached, the entry leaves. r.mu is held on entry.
func (r *room) armGrace(mem *member, d time.Duration) {
	mem.stopGrace()
	gen := mem.gen
	mem.grace = time.AfterFunc(d, func() { r.graceExpired(mem, gen) })
}

// EndGrace ends at once the grace of a dropped connection's presence entry
// (its node was declared dead, say): the entry leaves now, with the leave
// broadcast. An entry taken over meanwhile, or not in grace, is left alone.
// It reports whether an entry left.
func (m *Manager) EndGrace(room, conn string) bool {
	r := m.lockLive(room)
	if r == nil {
		return false
	}
	defer r.mu.Unlock()
	mem := r.members[conn]
	if mem == nil || mem.att != nil {
		return false
	}
	mem.stopGrace()
	r.removeMember(mem)
	r.emptied()
	return true
}

func (r *room) graceExpired(mem *member, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead || mem.gen != gen || mem.att != nil || r.members[mem.m.C] != mem {
		return
	}
	mem.grace = nil
	r.removeMember(mem)
	r.emptied()
}

// stopGrace stops the entry's grace timer; a callback already on its way sees
// gen changed and does nothing.
func (mem *member) stopGrace() {
	if mem.grace != nil {
		mem.grace.Stop()
		mem.grace = nil
	}
	mem.gen++
}

// removeMember deletes a detached entry and tells the others it left. r.mu is
// held on entry.
func (r *room) removeMember(mem *member) {
	mem.stopGrace()
	delete(r.members, mem.m.C)
	if ev := r.presEvent(nil, []string{mem.m.C}, nil); ev != nil {
		r.deliver(ev, nil)
	}
	r.occupancyChanged()
}

// Kick removes every presence entry of user from the room, graced ones
// included: each attached subscriber gets a KindLeft event with code and msg
// and is detached (no grace), then the others are told they left. It returns
// the number of entries removed; an empty user matches nobody. Observers are
// not members and are not kicked.
func (m *Manager) Kick(room, user string, code protocol.Code, msg string) int {
	if user == "" {
		return 0
	}
	r := m.lockLive(room)
	if r == nil {
		return 0
	}
	defer r.mu.Unlock()
	var (
		gone []string
		left *Event
	)
	for c, mem := range r.members {
		if mem.m.U != user {
			continue
		}
		if att := mem.att; att != nil {
			if left == nil {
				left = &Event{Kind: KindLeft, Room: r.name, Epoch: r.epoch, Code: code, Msg: msg}
			}
			r.detach(att)
			att.sub.Deliver(left)
		}
		mem.stopGrace()
		delete(r.members, c)
		gone = append(gone, c)
	}
	if len(gone) == 0 {
		return 0
	}
	slices.Sort(gone)
	if ev := r.presEvent(nil, gone, nil); ev != nil {
		r.deliver(ev, nil)
	}
	r.occupancyChanged()
	r.emptied()
	return len(gone)
}

// Presence returns a snapshot of the room's presence entries, graced ones
// included, sorted by connection id (empty when the namespace has presence
// off); ok is false when the room does not exist.
func (m *Manager) Presence(room string) ([]protocol.Member, bool) {
	r := m.lockLive(room)
	if r == nil {
		return nil, false
	}
	defer r.mu.Unlock()
	ms := r.presenceSnapshot()
	sortByConn(ms)
	return ms, true
}

// sortByConn orders members by connection id, for stable listings.
func sortByConn(ms []protocol.Member) {
	slices.SortFunc(ms, func(a, b protocol.Member) int { return strings.Compare(a.C, b.C) })
}

// presenceSnapshot copies the entries (never nil; empty with presence off).
// r.mu is held on entry.
func (r *room) presenceSnapshot() []protocol.Member {
	if r.ns.NoPresence {
		return []protocol.Member{}
	}
	out := make([]protocol.Member, 0, len(r.members))
	for _, mem := range r.members {
		out = append(out, mem.m)
	}
	return out
}
