package room

import (
	"errors"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
)

// Durable changes as commands. A durable write is made in two steps:
// Prepare checks it against the room as the node serving the room sees it
// (membership, limits, rates, a known idempotency key) and returns a
// Command; Apply makes the change. Apply is deterministic: the same commands
// applied in the same order to the same rooms give the same rooms, seqs and
// event frames on every node, which is what lets the cluster layer replicate
// a room by replicating its commands (a consensus log, one per partition).
//
// In replicated mode (Config.Replicated) the Manager never creates, changes
// or drops a room's durable state outside Apply; without it, Publish and
// SetState prepare and apply in one call.

// CommandOp is what a Command does.
type CommandOp uint8

const (
	// CmdCreate creates a room with Epoch, when it does not exist.
	CmdCreate CommandOp = iota + 1
	// CmdMsg appends a durable message.
	CmdMsg
	// CmdSet sets (Data) or deletes (Data nil) a state key.
	CmdSet
	// CmdDrop drops a room that went idle, if it is still at Epoch and Seq.
	CmdDrop
	// CmdTransition records an occupancy transition (hookstate.go).
	CmdTransition
	// CmdHookMark records what the hooks' backend acknowledged
	// (hookstate.go).
	CmdHookMark
)

// Command is one durable change of a room. Its msgpack form is what the
// cluster layer proposes.
type Command struct {
	Op    CommandOp    `msgpack:"o"`
	Room  string       `msgpack:"r"`
	Epoch string       `msgpack:"e,omitempty"` // the room's epoch when prepared; a fresh one with New
	New   bool         `msgpack:"n,omitempty"` // the room did not exist: create it with Epoch
	API   bool         `msgpack:"a,omitempty"` // written through the HTTP API, not by a member
	User  string       `msgpack:"u,omitempty"`
	Conn  string       `msgpack:"c,omitempty"`
	Key   string       `msgpack:"k,omitempty"` // idempotency key (msg) or state key (set)
	Data  protocol.Raw `msgpack:"d,omitempty"` // payload, or state value (nil: delete)
	At    int64        `msgpack:"t,omitempty"` // unix ms at the proposer: the event's ts and the room's clock
	Seq   uint64       `msgpack:"s,omitempty"` // drop: the room's seq when it went idle; transition: N; mark: up to
	// Force (drop): drop even when the hook record is unsettled, because the
	// proposer delivers no occupied or vacated hook for the room (hooks off,
	// or turned off since the record was written).
	Force bool `msgpack:"f,omitempty"`
}

// ErrNoRoom is returned in replicated mode by Join for a room that does not
// exist: the caller creates it (CmdCreate) and joins again.
var ErrNoRoom = protocol.NewError(protocol.CodeUnavailable, "room is being created")

// errClosing answers a join to a room whose drop is under way.
var errClosing = protocol.NewError(protocol.CodeUnavailable, "room is closing")

// errStale answers an API write prepared for a room that was dropped before
// the write was applied: preparing it again creates the room afresh.
var errStale = protocol.NewError(protocol.CodeUnavailable, "room was dropped meanwhile; retry")

// ErrBadCommand wraps the error about a command that cannot be decoded.
var ErrBadCommand = errors.New("room: invalid command")

// Marshal encodes the command.
func (c *Command) Marshal() []byte {
	b, err := msgpack.Marshal(c)
	if err != nil {
		panic(err) // a struct of strings, bytes and ints always encodes
	}
	return b
}

// DecodeCommand decodes a command made by Marshal.
func DecodeCommand(b []byte) (*Command, error) {
	if end, err := protocol.SkipValue(b, 0); err != nil || end != len(b) {
		return nil, errors.Join(ErrBadCommand, err)
	}
	c := &Command{}
	if err := msgpack.Unmarshal(b, c); err != nil {
		return nil, errors.Join(ErrBadCommand, err)
	}
	if c.Op < CmdCreate || c.Op > CmdHookMark || !protocol.ValidRoomName(c.Room) {
		return nil, ErrBadCommand
	}
	return c, nil
}

// NewCreate returns the command that creates a room with a fresh epoch.
func NewCreate(name string) *Command {
	return &Command{Op: CmdCreate, Room: name, Epoch: newEpoch(), New: true}
}

// PreparePublish checks a durable publish and returns its command. An
// ephemeral publish is delivered at once (it is soft state: nothing to
// replicate) and yields no command; so does a publish whose idempotency key
// the room already knows, which returns that key's seq.
func (m *Manager) PreparePublish(req PublishRequest) (cmd *Command, seq uint64, err error) {
	if err := validName(req.Room); err != nil {
		return nil, 0, err
	}
	ns := m.Settings(req.Room)
	if len(req.Data) > ns.MaxMessageBytes {
		return nil, 0, protocol.Errorf(protocol.CodeTooLarge, "payload over %d bytes", ns.MaxMessageBytes)
	}
	if len(req.Key) > protocol.MaxIdempotencyKey {
		return nil, 0, protocol.Errorf(protocol.CodeTooLarge, "idempotency key over %d bytes", protocol.MaxIdempotencyKey)
	}
	if err := protocol.ValidatePayload(req.Data); err != nil {
		return nil, 0, err
	}
	if ns.APIPublishOnly && !req.FromAPI {
		return nil, 0, protocol.Errorf(protocol.CodeForbidden, "only the API may publish in room %q", req.Room)
	}
	r, from, err := m.lockForWrite(req.Room, req.Conn, req.FromAPI)
	if err != nil {
		return nil, 0, err
	}
	if r == nil { // an API write to a room that does not exist: it creates it
		return &Command{Op: CmdMsg, Room: req.Room, Epoch: newEpoch(), New: true, API: true, User: req.User,
			Conn: req.Conn, Key: req.Key, Data: req.Data, At: m.now().UnixMilli()}, 0, nil
	}
	defer r.mu.Unlock()
	if req.FromAPI {
		defer r.touch()
	}
	now := m.now()
	if req.Ephemeral {
		if err := r.allow(from, now); err != nil {
			return nil, 0, err
		}
		var except *attachment
		if from != nil {
			except = from.att
		}
		r.deliver(r.newEph(req.User, req.Conn, req.Data), except)
		return nil, 0, nil
	}
	if req.Key != "" {
		if seq, ok := r.dedupe.peek(req.Key, now); ok {
			return nil, seq, nil
		}
	}
	if err := r.allow(from, now); err != nil {
		return nil, 0, err
	}
	return &Command{Op: CmdMsg, Room: req.Room, Epoch: r.epoch, API: req.FromAPI, User: req.User, Conn: req.Conn,
		Key: req.Key, Data: req.Data, At: now.UnixMilli()}, 0, nil
}

// PrepareSet checks a state change and returns its command.
func (m *Manager) PrepareSet(req SetRequest) (*Command, error) {
	if err := validName(req.Room); err != nil {
		return nil, err
	}
	ns := m.Settings(req.Room)
	switch {
	case req.Key == "":
		return nil, protocol.NewError(protocol.CodeBadRequest, "empty state key")
	case len(req.Key) > protocol.MaxStateKey:
		return nil, protocol.Errorf(protocol.CodeTooLarge, "state key over %d bytes", protocol.MaxStateKey)
	}
	var val protocol.Raw
	if !req.Value.IsNil() {
		if len(req.Value) > ns.StateMaxValueBytes {
			return nil, protocol.Errorf(protocol.CodeTooLarge, "state value over %d bytes", ns.StateMaxValueBytes)
		}
		if err := protocol.ValidatePayload(req.Value); err != nil {
			return nil, err
		}
		val = req.Value
	}
	if ns.APIPublishOnly && !req.FromAPI {
		return nil, protocol.Errorf(protocol.CodeForbidden, "only the API may set state in room %q", req.Room)
	}
	r, from, err := m.lockForWrite(req.Room, req.Conn, req.FromAPI)
	if err != nil {
		return nil, err
	}
	now := m.now()
	cmd := &Command{Op: CmdSet, Room: req.Room, API: req.FromAPI, User: req.User, Conn: req.Conn, Key: req.Key, Data: val, At: now.UnixMilli()}
	if r == nil {
		cmd.Epoch, cmd.New = newEpoch(), true
		return cmd, nil
	}
	defer r.mu.Unlock()
	if req.FromAPI {
		defer r.touch()
	}
	if err := r.state.check(req.Key, val, r.ns); err != nil {
		return nil, err
	}
	if err := r.state.checkNode(req.Key, val); err != nil {
		m.cfg.OnLimit(LimitNodeState)
		return nil, err
	}
	if err := r.allow(from, now); err != nil {
		return nil, err
	}
	cmd.Epoch = r.epoch
	return cmd, nil
}

// Apply makes a command's change and delivers its event to the room's
// subscribers. It returns the seq of a msg or set (for a msg whose key the
// room knows, the seq that key got). Whatever it decides depends on the
// rooms and the command alone, so it decides the same on every node:
//   - a command made for a room that did not exist (New) creates it with the
//     command's epoch; a create of a room that exists does nothing;
//   - a member's write made for another epoch than the room's (it was
//     dropped and made again meanwhile) fails with not_joined, an API write
//     for a room dropped meanwhile with unavailable (prepare it again);
//   - a set over the room's state limits fails;
//   - a drop of a room written since it went idle does nothing.
func (m *Manager) Apply(c *Command) (uint64, error) {
	if c.Op == CmdDrop {
		m.applyDrop(c)
		return 0, nil
	}
	r, err := m.lockForApply(c)
	if err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	defer r.touch() // an empty room lives IdleTTL from its last change
	now := r.clockAt(time.UnixMilli(c.At))
	switch c.Op {
	case CmdMsg:
		if c.Key != "" {
			if seq, ok := r.dedupe.lookup(c.Key, now); ok {
				return seq, nil
			}
		}
		r.seq++
		r.appendLog(r.newMsg(r.seq, c.User, c.Conn, c.Data, c.At), now)
		if c.Key != "" {
			r.dedupe.add(c.Key, r.seq, now)
		}
		return r.seq, nil
	case CmdTransition, CmdHookMark:
		return r.applyHook(c), nil
	case CmdSet:
		val := c.Data
		if val.IsNil() {
			val = nil
		}
		if err := r.state.check(c.Key, val, r.ns); err != nil {
			return 0, err
		}
		r.seq++
		ev := r.newState(r.seq, c.User, c.Conn, c.Key, val, c.At)
		r.state.apply(c.Key, ev.Data)
		r.appendLog(ev, now)
		return r.seq, nil
	}
	return 0, nil // CmdCreate: lockOrCreate did it
}

// lockForApply returns the room a command applies to, locked, creating it
// when the command may (Apply's rules).
func (m *Manager) lockForApply(c *Command) (*room, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		r := m.rooms[c.Room]
		if r == nil {
			m.mu.Unlock()
			switch {
			case c.New:
			case c.API:
				return nil, errStale
			default:
				return nil, notJoined(c.Room)
			}
			m.mu.Lock()
			if m.rooms[c.Room] != nil || m.closed {
				m.mu.Unlock()
				continue
			}
			r = newRoom(m, c.Room, m.Settings(c.Room))
			r.epoch = c.Epoch
			m.rooms[c.Room] = r
			r.mu.Lock()
			m.mu.Unlock()
			return r, nil
		}
		m.mu.Unlock()
		r.mu.Lock()
		if r.dead {
			r.mu.Unlock()
			continue
		}
		if r.epoch != c.Epoch && !c.New && !c.API {
			r.mu.Unlock()
			return nil, notJoined(c.Room)
		}
		return r, nil
	}
}

// applyDrop drops a room that is still as it was when it went idle: same
// epoch and seq, and no occupancy transition to record or deliver
// (hookstate.go) unless the drop is forced (Command.Force). Subscribers that joined since are told the room moved (the
// cluster layer keeps joins out of a closing room, so there are none).
func (m *Manager) applyDrop(c *Command) {
	r := m.lockLive(c.Room)
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	unsettled := r.hooks.unsettled() && !c.Force
	if r.epoch != c.Epoch || r.seq != c.Seq || unsettled {
		r.closing = false // written meanwhile, or a transition to record or deliver: it lives on
		r.maybeIdle()
		if unsettled {
			r.occupancyChanged()
		}
		return
	}
	r.evict("room closed")
	r.kill()
	m.remove(r)
}

// clockAt advances the room's clock to t and returns it. The clock only
// moves forward, whatever the proposers' clocks did, so that idempotency
// keys and history expire in the same order on every node. r.mu is held on
// entry.
func (r *room) clockAt(t time.Time) time.Time {
	if t.After(r.clock) {
		r.clock = t
	}
	return r.clock
}
