package room

import (
	"slices"
	"time"

	"github.com/roomd/roomd/protocol"
)

// A replicated Manager's rooms change hands within the node: the node that
// serves a partition (its log's leader) holds the rooms' subscribers and
// presence, soft state that the log does not carry; the others only apply
// commands. These are the calls the cluster layer makes when that changes.

// Evict takes every subscriber and presence entry out of the rooms whose
// name match selects: each subscriber gets KindLeft with CodeRoomMoved (it
// re-joins where the room is served now). Durable state stays. Timers stop,
// and a closing room is open again.
func (m *Manager) Evict(match func(name string) bool) {
	for _, r := range m.matching(match) {
		r.mu.Lock()
		if !r.dead {
			r.evict("room moved")
			r.stopIdle()
			r.stopRecovery()
			r.closing = false
		}
		r.mu.Unlock()
	}
}

// Serve (re)starts the idle timers of the empty rooms whose name match
// selects: this node serves them from now, and drops them when they stay
// empty for their IdleTTL from now (their members, re-joining from where
// the rooms were served before, have that long).
//
// Each room also starts a recovery of its presence, which was soft state
// where the room was served before: for the presence grace (at least
// MinHandoffGrace), re-joining members report the entries their nodes had
// seen (JoinRequest.Known); at its end, every reported entry that nobody
// brought back (a member whose node is gone) is broadcast as gone, once.
func (m *Manager) Serve(match func(name string) bool) {
	grace := max(m.grace, MinHandoffGrace)
	for _, r := range m.matching(match) {
		r.mu.Lock()
		r.closing = false
		r.touch()
		if !r.dead {
			r.startRecovery(grace)
		}
		r.mu.Unlock()
	}
}

// startRecovery starts the room's presence recovery. r.mu is held.
func (r *room) startRecovery(d time.Duration) {
	r.stopRecovery()
	r.known = map[string]bool{}
	gen := r.recGen
	r.recovery = time.AfterFunc(d, func() { r.endRecovery(gen) })
}

// stopRecovery ends a recovery without a broadcast. r.mu is held.
func (r *room) stopRecovery() {
	if r.recovery != nil {
		r.recovery.Stop()
		r.recovery = nil
	}
	r.known = nil
	r.recGen++
}

// endRecovery broadcasts as gone the reported entries nobody brought back.
func (r *room) endRecovery(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead || gen != r.recGen {
		return
	}
	var gone []string
	for c := range r.known {
		if r.members[c] == nil {
			gone = append(gone, c)
		}
	}
	r.stopRecovery()
	if f := r.m.cfg.onOccupancy; f != nil {
		f(r.name) // the members are known again: does the record agree?
	}
	if len(gone) == 0 {
		return
	}
	slices.Sort(gone)
	if ev := r.presEvent(nil, gone, nil); ev != nil {
		r.deliver(ev, nil)
	}
}

// Reopen gives up a closing room's drop (Config.OnIdle): joins are taken
// again. With rearm the idle timer starts again (the room is still served
// here); without, it stays off until Serve.
func (m *Manager) Reopen(name string, rearm bool) {
	r := m.lockLive(name)
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	r.closing = false
	if rearm {
		r.maybeIdle()
	}
}

// ExportDurable returns the durable state of the rooms whose name match
// selects, sorted by name: a snapshot per room as Export makes, without
// presence, and without sealing anything.
func (m *Manager) ExportDurable(match func(name string) bool) []*Snapshot {
	var out []*Snapshot
	for _, name := range m.RoomNames() {
		if !match(name) {
			continue
		}
		r := m.lockLive(name)
		if r == nil {
			continue
		}
		s := r.export(r.clock)
		s.Presence = nil
		s.Clock = r.clock.UnixMilli()
		r.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// Restore replaces the rooms whose name match selects by snaps (each of
// which must match too): rooms not in snaps go, with their subscribers told
// the room moved.
func (m *Manager) Restore(match func(name string) bool, snaps []*Snapshot) error {
	for _, r := range m.matching(match) {
		r.mu.Lock()
		if !r.dead {
			r.evict("room moved")
			r.kill()
			m.remove(r)
		}
		r.mu.Unlock()
	}
	for _, s := range snaps {
		if !match(s.Room) {
			return badSnapshot("room %q does not belong here", s.Room)
		}
		s.Presence = nil
		if err := m.Install(s); err != nil {
			return err
		}
	}
	return nil
}

// matching returns the live rooms whose name match selects.
func (m *Manager) matching(match func(name string) bool) []*room {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*room
	for name, r := range m.rooms {
		if match(name) {
			out = append(out, r)
		}
	}
	return out
}

// evict detaches every subscriber, each told KindLeft with CodeRoomMoved
// and msg, and forgets every presence entry without a broadcast. r.mu is
// held on entry.
func (r *room) evict(msg string) {
	left := &Event{Kind: KindLeft, Room: r.name, Epoch: r.epoch, Code: protocol.CodeRoomMoved, Msg: msg}
	subs := r.list
	for _, mem := range r.members {
		mem.stopGrace()
	}
	r.subs = make(map[Subscriber]*attachment)
	r.list = nil
	r.members = make(map[string]*member)
	r.observers = 0
	for _, a := range subs {
		a.sub.Deliver(left)
	}
}

// Replicate makes the Manager a replica of a log of Commands (command.go):
// Config.Replicated, with onIdle as Config.OnIdle. It must be called before
// the Manager is used.
func (m *Manager) Replicate(onIdle func(room, epoch string, seq uint64)) {
	m.cfg.Replicated = true
	m.cfg.OnIdle = onIdle
}
