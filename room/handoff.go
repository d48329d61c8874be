package room

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/time/rate"
)

// Handoff: moving a room to another node (docs/CLUSTER.md, "Handoff"). The
// old owner calls Export, which seals the room and returns its Snapshot; the
// snapshot travels as msgpack; the new owner calls Install.

// SnapshotVersion is the Snapshot format this package writes and reads.
const SnapshotVersion = 1

// MinHandoffGrace is the least grace an installed presence entry gets, even
// when Config.PresenceGrace is shorter or off: the edges of the old owner need
// that long to re-join their members at the new one.
const MinHandoffGrace = 5 * time.Second

// maxEpoch bounds an epoch's length in a snapshot (this package makes 12
// characters).
const maxEpoch = 64

var (
	// ErrBadSnapshot is wrapped by every error about an invalid snapshot, or
	// one the target namespace's limits would not hold.
	ErrBadSnapshot = errors.New("room: invalid snapshot")
	// ErrRoomExists is wrapped by Install's error when the room already lives
	// on this Manager.
	ErrRoomExists = errors.New("room: room exists")
)

// Snapshot is everything a room is, to hand it to another node. It travels as
// msgpack (MarshalMsgpack, DecodeSnapshot). Its byte slices are shared, never
// copied: Export's snapshot shares the room's frames and values (which are
// immutable), and Install keeps the snapshot's, so nobody may modify a
// Snapshot's contents once made. Empty fields are nil.
type Snapshot struct {
	V     int // SnapshotVersion
	Room  string
	Epoch string
	Seq   uint64 // the room's seq: the last one handed out, 0 for none
	// Log is the history's events as their encoded msg and state frames,
	// oldest first, with consecutive seqs; the last one is Seq.
	Log [][]byte
	// Conns is the sender's connection id of each Log event (a state frame
	// does not carry it). Nil or as long as Log; nil means a msg's from its
	// frame and none for state.
	Conns []string
	// State is the room's state. Its byte count (for the limits) is the sum
	// of len(key)+len(value), recomputed on install.
	State map[string]protocol.Raw
	// Presence is every presence entry, live or in grace, sorted by conn.
	Presence []protocol.Member
	// Dedupe is the idempotency keys still in their window, oldest first.
	Dedupe []DedupeEntry
	// Clock is the room's command clock (unix ms; 0: none), for a
	// replicated room (command.go).
	Clock int64
	// Hooks is the room's hook record (hookstate.go).
	Hooks HookState
}

// DedupeEntry is one remembered idempotency key: the seq its publish got and
// when it was seen (unix ms).
type DedupeEntry struct {
	Key string `msgpack:"k"`
	Seq uint64 `msgpack:"s"`
	At  int64  `msgpack:"t"`
}

// snapshotWire is a Snapshot's msgpack form. Payloads (state values, presence
// data) travel as bin, so the snapshot's own nesting stays shallow whatever
// the payloads hold, and the whole message can be checked by a scanner that
// never recurses before any decoder looks at it.
type snapshotWire struct {
	V      int           `msgpack:"v"`
	Room   string        `msgpack:"room"`
	Epoch  string        `msgpack:"epoch"`
	Seq    uint64        `msgpack:"seq"`
	Log    [][]byte      `msgpack:"log,omitempty"`
	Conns  []string      `msgpack:"conns,omitempty"`
	State  []stateWire   `msgpack:"state,omitempty"` // sorted by key: one encoding
	Pres   []memberWire  `msgpack:"pres,omitempty"`
	Dedupe []DedupeEntry `msgpack:"dedupe,omitempty"`
	Clock  int64         `msgpack:"clock,omitempty"`
	Hooks  *HookState    `msgpack:"hooks,omitempty"`
}

type stateWire struct {
	K string `msgpack:"k"`
	V []byte `msgpack:"v"`
}

type memberWire struct {
	C string `msgpack:"c"`
	U string `msgpack:"u,omitempty"`
	D []byte `msgpack:"d,omitempty"`
	I []byte `msgpack:"i,omitempty"`
}

// MarshalMsgpack encodes the snapshot (msgpack.Marshaler). Map keys are
// sorted, so a snapshot has one encoding.
func (s *Snapshot) MarshalMsgpack() ([]byte, error) {
	w := snapshotWire{V: s.V, Room: s.Room, Epoch: s.Epoch, Seq: s.Seq, Log: s.Log, Conns: s.Conns, Dedupe: s.Dedupe, Clock: s.Clock}
	if s.Hooks != (HookState{}) {
		w.Hooks = &s.Hooks
	}
	if len(s.State) > 0 {
		w.State = make([]stateWire, 0, len(s.State))
		for k, v := range s.State {
			w.State = append(w.State, stateWire{K: k, V: v})
		}
		sort.Slice(w.State, func(i, j int) bool { return w.State[i].K < w.State[j].K })
	}
	if len(s.Presence) > 0 {
		w.Pres = make([]memberWire, len(s.Presence))
		for i, p := range s.Presence {
			w.Pres[i] = memberWire{C: p.C, U: p.U, D: p.D, I: p.I}
		}
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(&w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalMsgpack decodes and validates a snapshot (msgpack.Unmarshaler), as
// DecodeSnapshot does.
func (s *Snapshot) UnmarshalMsgpack(b []byte) error {
	d, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	*s = *d
	return nil
}

// DecodeSnapshot decodes a snapshot and checks that it is one a room could
// have made: a valid room name, an epoch, log frames that decode as msg and
// state frames of that room with consecutive seqs ending at Seq, state keys
// and values within the protocol's limits and agreeing with the log's last
// change of each key, presence entries with distinct conns, dedupe keys with
// seqs in 1..Seq. Bad input yields an error wrapping ErrBadSnapshot, never a
// panic. The namespace's own limits are checked by Install.
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	if len(b) == 0 {
		return nil, badSnapshot("empty")
	}
	// An iterative scan first: one well-formed value, no ext types, nesting
	// within bounds, every length within the message. After it the decoder
	// cannot recurse deeply or allocate beyond the message's size.
	if err := protocol.ValidatePayload(b); err != nil {
		return nil, badSnapshot("%v", err)
	}
	var w snapshotWire
	if err := msgpack.Unmarshal(b, &w); err != nil {
		return nil, badSnapshot("%v", err)
	}
	s := &Snapshot{V: w.V, Room: w.Room, Epoch: w.Epoch, Seq: w.Seq, Log: w.Log, Conns: w.Conns, Dedupe: w.Dedupe, Clock: w.Clock}
	if w.Hooks != nil {
		s.Hooks = *w.Hooks
	}
	if len(s.Log) == 0 {
		s.Log = nil
	}
	if len(s.Conns) == 0 {
		s.Conns = nil
	}
	if len(s.Dedupe) == 0 {
		s.Dedupe = nil
	}
	if len(w.State) > 0 {
		s.State = make(map[string]protocol.Raw, len(w.State))
		for i, kv := range w.State {
			if i > 0 && kv.K <= w.State[i-1].K {
				return nil, fmt.Errorf("%w: state keys not sorted or repeated", ErrBadSnapshot)
			}
			s.State[kv.K] = nonEmpty(kv.V)
		}
	}
	if len(w.Pres) > 0 {
		s.Presence = make([]protocol.Member, len(w.Pres))
		for i, p := range w.Pres {
			s.Presence[i] = protocol.Member{C: p.C, U: p.U, D: nonEmpty(p.D), I: nonEmpty(p.I)}
		}
	}
	if _, err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func nonEmpty(b []byte) protocol.Raw {
	if len(b) == 0 {
		return nil
	}
	return b
}

func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
}

// check validates the snapshot (see DecodeSnapshot) and rebuilds its log's
// events.
func (s *Snapshot) check() ([]*Event, error) {
	switch {
	case s.V != SnapshotVersion:
		return nil, badSnapshot("version %d, want %d", s.V, SnapshotVersion)
	case !protocol.ValidRoomName(s.Room):
		return nil, badSnapshot("invalid room name %q", s.Room)
	case s.Epoch == "" || len(s.Epoch) > maxEpoch:
		return nil, badSnapshot("invalid epoch %q", s.Epoch)
	case len(s.Conns) != 0 && len(s.Conns) != len(s.Log):
		return nil, badSnapshot("%d conns for %d log events", len(s.Conns), len(s.Log))
	case uint64(len(s.Log)) > s.Seq:
		return nil, badSnapshot("%d log events at seq %d", len(s.Log), s.Seq)
	case s.Hooks.Published > s.Seq || s.Hooks.TransDone > s.Hooks.Trans:
		return nil, badSnapshot("hook marks beyond the room (%d of seq %d, %d of %d transitions)",
			s.Hooks.Published, s.Seq, s.Hooks.TransDone, s.Hooks.Trans)
	}
	evs, err := s.events()
	if err != nil {
		return nil, err
	}

	last := make(map[string]*Event) // each key's last change in the log
	for _, ev := range evs {
		if ev.Kind == KindState {
			last[ev.Key] = ev
		}
	}
	for k, v := range s.State {
		if err := checkStateKey(k); err != nil {
			return nil, err
		}
		if v.IsNil() {
			return nil, badSnapshot("state key %q without a value", k)
		}
		if err := protocol.ValidatePayload(v); err != nil {
			return nil, badSnapshot("state key %q: %v", k, err)
		}
	}
	for k, ev := range last {
		v, ok := s.State[k]
		if ev.Deleted && ok || !ev.Deleted && (!ok || !bytes.Equal(v, ev.Data)) {
			return nil, badSnapshot("state key %q disagrees with its change at seq %d", k, ev.Seq)
		}
	}

	conns := make(map[string]bool, len(s.Presence))
	for _, p := range s.Presence {
		if p.C == "" || conns[p.C] {
			return nil, badSnapshot("presence entry with an empty or repeated conn %q", p.C)
		}
		conns[p.C] = true
		if err := protocol.ValidatePayload(p.D); err != nil {
			return nil, badSnapshot("presence of %q: %v", p.C, err)
		}
		if err := protocol.ValidatePayload(p.I); err != nil {
			return nil, badSnapshot("info of %q: %v", p.C, err)
		}
	}

	keys := make(map[string]bool, len(s.Dedupe))
	for _, d := range s.Dedupe {
		switch {
		case d.Key == "" || len(d.Key) > protocol.MaxIdempotencyKey || keys[d.Key]:
			return nil, badSnapshot("empty, long or repeated idempotency key %q", d.Key)
		case d.Seq == 0 || d.Seq > s.Seq:
			return nil, badSnapshot("idempotency key %q has seq %d, room at %d", d.Key, d.Seq, s.Seq)
		}
		keys[d.Key] = true
	}
	return evs, nil
}

func checkStateKey(k string) error {
	if k == "" || len(k) > protocol.MaxStateKey {
		return badSnapshot("empty or long state key %q", k)
	}
	return nil
}

// events rebuilds the log's events from their frames. Each event keeps its
// frame (shared, not re-encoded) and its Data aliases the payload inside it,
// as the room's own builders make them (event.go). Created is not carried: it
// is a latency stamp of the node that built the event, and history is only
// ever replayed, never delivered live.
func (s *Snapshot) events() ([]*Event, error) {
	if len(s.Log) == 0 {
		return nil, nil
	}
	first := s.Seq - uint64(len(s.Log)) + 1
	evs := make([]*Event, len(s.Log))
	var f protocol.Frame
	for i, b := range s.Log {
		if err := protocol.DecodeFrame(b, &f); err != nil {
			return nil, badSnapshot("log frame %d: %v", i, err)
		}
		if f.R != s.Room {
			return nil, badSnapshot("log frame %d is of room %q", i, f.R)
		}
		if f.S != first+uint64(i) {
			return nil, badSnapshot("log frame %d has seq %d, want %d", i, f.S, first+uint64(i))
		}
		if err := protocol.ValidatePayload(f.D); err != nil {
			return nil, badSnapshot("log frame %d: %v", i, err)
		}
		ev := &Event{Room: s.Room, Epoch: s.Epoch, Seq: f.S, User: f.U, TS: f.TS, Frame: b}
		if len(s.Conns) > 0 {
			ev.Conn = s.Conns[i]
		}
		switch f.T {
		case protocol.TypeMsg:
			if len(s.Conns) > 0 && s.Conns[i] != f.C {
				return nil, badSnapshot("log frame %d: conn %q, its frame says %q", i, s.Conns[i], f.C)
			}
			ev.Kind, ev.Conn = KindMsg, f.C
			ev.Data = alias(b, f.D, strLen(2)+uintLen(f.TS)) // as newMsg
		case protocol.TypeState:
			if err := checkStateKey(f.K); err != nil {
				return nil, err
			}
			ev.Kind, ev.Key = KindState, f.K
			if f.D.IsNil() {
				ev.Deleted = true
				break
			}
			tail := strLen(2) + uintLen(f.TS) // as newState
			if f.U != "" {
				tail += strLen(1) + strLen(len(f.U))
			}
			ev.Data = alias(b, f.D, tail)
		default:
			return nil, badSnapshot("log frame %d has type %q", i, f.T)
		}
		evs[i] = ev
	}
	return evs, nil
}

// fits checks the snapshot against a namespace's limits: the state a room of
// that namespace may hold and the presence data a member may have.
func (s *Snapshot) fits(ns Namespace) error {
	if len(s.State) > ns.StateMaxKeys {
		return badSnapshot("%d state keys, the namespace allows %d", len(s.State), ns.StateMaxKeys)
	}
	size := 0
	for k, v := range s.State {
		if len(v) > ns.StateMaxValueBytes {
			return badSnapshot("state value of %q over %d bytes", k, ns.StateMaxValueBytes)
		}
		size += len(k) + len(v)
	}
	if size > ns.StateMaxBytes {
		return badSnapshot("state of %d bytes, the namespace allows %d", size, ns.StateMaxBytes)
	}
	for _, p := range s.Presence {
		if len(p.D) > ns.MaxPresenceBytes {
			return badSnapshot("presence of %q over %d bytes", p.C, ns.MaxPresenceBytes)
		}
	}
	return nil
}

// Export seals the room and takes it out of this Manager, returning its
// snapshot; ok is false when the room does not exist (or the Manager is
// closed).
//
// From the moment Export returns the room accepts no more operations here:
// every subscriber, member or observer, has been handed a KindLeft event with
// protocol.CodeRoomMoved and msg "room moved" and detached, no presence leave
// is broadcast (the entries travel in the snapshot), and the room's timers are
// stopped. Later operations on that name here, those that were waiting for
// the room's lock included, act as on any room this Manager does not hold: a
// member's publish, set or presence fails with not_joined, while a Join or an
// API write creates a NEW room (new epoch, empty). The cluster layer prevents
// that by routing the room's operations to its new owner.
//
// Every publish acknowledged before Export is in the snapshot: its seq is at
// most Seq, and its event is in Log while history holds it.
func (m *Manager) Export(name string) (snap *Snapshot, ok bool) {
	r := m.lockLive(name)
	if r == nil {
		return nil, false
	}
	defer r.mu.Unlock()
	snap = r.export(m.now())
	left := &Event{Kind: KindLeft, Room: r.name, Epoch: r.epoch, Code: protocol.CodeRoomMoved, Msg: "room moved"}
	subs := r.list
	r.kill() // stops the idle and grace timers
	m.remove(r)
	for _, a := range subs {
		a.sub.Deliver(left)
	}
	return snap, true
}

// export builds the room's snapshot. r.mu is held on entry.
func (r *room) export(now time.Time) *Snapshot {
	r.hist.prune(now)
	r.dedupe.expire(now)
	s := &Snapshot{V: SnapshotVersion, Room: r.name, Epoch: r.epoch, Seq: r.seq, Hooks: r.hooks}
	if n := r.hist.n; n > 0 {
		s.Log = make([][]byte, n)
		s.Conns = make([]string, n)
		for i := range n {
			ev := r.hist.at(i)
			s.Log[i], s.Conns[i] = ev.Frame, ev.Conn
		}
	}
	if len(r.state.kv) > 0 {
		s.State = r.state.snapshot()
	}
	if len(r.members) > 0 {
		s.Presence = make([]protocol.Member, 0, len(r.members))
		for _, mem := range r.members {
			s.Presence = append(s.Presence, mem.m)
		}
		sortByConn(s.Presence)
	}
	for _, rec := range r.dedupe.order[r.dedupe.head:] {
		if seq, ok := r.dedupe.seen[rec.key]; ok && seq == rec.seq {
			s.Dedupe = append(s.Dedupe, DedupeEntry{Key: rec.key, Seq: rec.seq, At: rec.at.UnixMilli()})
		}
	}
	return s
}

// Install creates a room from a snapshot: the same epoch and seq, its history
// (events rebuilt from the log's frames, which they share), state and
// idempotency keys. Every presence entry is installed without a subscriber,
// in its grace (Config.PresenceGrace, at least MinHandoffGrace), so that a
// Join with the same Conn and User takes it over with no presence broadcast
// (or only an update if its data changed), and an entry nobody takes over
// leaves when its grace ends, the leave broadcast to whoever joined
// meanwhile. The room then idles and drops like any room; an empty one's
// IdleTTL starts now. Install keeps the snapshot's byte slices.
//
// Install fails with an error wrapping ErrRoomExists when a room of that name
// lives here (the cluster layer decides what to do), one wrapping
// ErrBadSnapshot when the snapshot is invalid or over the namespace's state
// or presence limits, and ErrClosed on a closed Manager. It delivers nothing.
func (m *Manager) Install(s *Snapshot) error {
	if s == nil {
		return badSnapshot("nil")
	}
	evs, err := s.check()
	if err != nil {
		return err
	}
	ns := m.Settings(s.Room)
	if err := s.fits(ns); err != nil {
		return err
	}

	r := newRoom(m, s.Room, ns)
	// Nobody can see r until it is in the map; its lock is held from here
	// until its timers are armed, so no operation finds it half made.
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch, r.seq, r.hooks = s.Epoch, s.Seq, s.Hooks
	if s.Clock != 0 {
		r.clock = time.UnixMilli(s.Clock)
	}
	now := m.now()
	for _, ev := range evs {
		r.hist.push(ev)
	}
	r.hist.prune(now)
	last := make(map[string]*Event)
	for _, ev := range evs {
		if ev.Kind == KindState {
			last[ev.Key] = ev
		}
	}
	for k, v := range s.State {
		if ev := last[k]; ev != nil && bytes.Equal(ev.Data, v) {
			v = ev.Data // held once, inside the event's frame, as SetState does
		}
		r.state.apply(k, v)
	}
	at := int64(math.MinInt64)
	for _, d := range s.Dedupe {
		at = max(at, d.At) // the queue must stay in time order, whatever the clocks did
		r.dedupe.add(d.Key, d.Seq, time.UnixMilli(at))
	}
	r.dedupe.expire(now)
	for _, p := range s.Presence {
		mem := &member{m: protocol.Member{C: p.C, U: p.U, D: nilIfNil(p.D), I: nilIfNil(p.I)}}
		if ns.PublishRate > 0 {
			mem.lim = rate.NewLimiter(rate.Limit(ns.PublishRate), ns.PublishBurst)
		}
		r.members[p.C] = mem
	}

	if err := m.insert(r); err != nil {
		r.kill()
		return err
	}
	grace := max(m.grace, MinHandoffGrace)
	for _, mem := range r.members {
		r.armGrace(mem, grace)
	}
	r.maybeIdle()
	return nil
}

// insert puts a new room in the map unless a live room of its name is there.
// r.mu is held on entry (r is not yet visible, so it is held while another
// room's lock is waited for without risk).
func (m *Manager) insert(r *room) error {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		old := m.rooms[r.name]
		if old == nil {
			m.rooms[r.name] = r
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
		// A room being dropped is dead and gone from the map once its lock
		// is free (kill and remove happen under one hold of it).
		old.mu.Lock()
		dead := old.dead
		old.mu.Unlock()
		if !dead {
			return fmt.Errorf("%w: %q", ErrRoomExists, r.name)
		}
	}
}

func nilIfNil(p protocol.Raw) protocol.Raw {
	if p.IsNil() {
		return nil
	}
	return p
}

// RoomNames returns the names of the rooms this Manager holds, sorted (for
// the cluster layer to pick a partition's rooms).
func (m *Manager) RoomNames() []string {
	m.mu.Lock()
	names := make([]string, 0, len(m.rooms))
	for name := range m.rooms {
		names = append(names, name)
	}
	m.mu.Unlock()
	sort.Strings(names)
	return names
}
