package room

import (
	"maps"
	"sync/atomic"

	"github.com/roomd/roomd/protocol"
)

// state is a room's key/value map. Its size is the sum of len(key)+len(value)
// over its entries. Values are never mutated once stored, so snapshots may
// share them.
type state struct {
	kv    map[string]protocol.Raw
	bytes int
	node  *nodeBytes // the node's count, which apply and release keep
}

// nodeBytes counts the state bytes of every room of a Manager against
// Config.MaxStateBytes.
type nodeBytes struct {
	n   atomic.Int64
	max int64
}

// release takes the state's bytes off the node's count (the room is gone).
func (s *state) release() {
	if s.node != nil {
		s.node.n.Add(-int64(s.bytes))
	}
}

// check reports whether setting key to val (nil: delete) keeps the state
// within the namespace's limits.
func (s *state) check(key string, val protocol.Raw, ns Namespace) error {
	if val == nil {
		return nil
	}
	old, exists := s.kv[key]
	if !exists && len(s.kv) >= ns.StateMaxKeys {
		return protocol.Errorf(protocol.CodeLimit, "state holds %d keys already", ns.StateMaxKeys)
	}
	size := s.bytes + len(val)
	if exists {
		size -= len(old)
	} else {
		size += len(key)
	}
	if size > ns.StateMaxBytes {
		return protocol.Errorf(protocol.CodeTooLarge, "state would grow over %d bytes", ns.StateMaxBytes)
	}
	if grow := int64(size - s.bytes); grow > 0 && s.node != nil && s.node.n.Load()+grow > s.node.max {
		return errNodeState
	}
	return nil
}

// errNodeState refuses a set beyond the node's state budget.
var errNodeState = protocol.NewError(protocol.CodeOverloaded, "this node holds its maximum of state bytes")

// apply sets key to val, or deletes it when val is nil.
func (s *state) apply(key string, val protocol.Raw) {
	before := s.bytes
	defer func() {
		if s.node != nil {
			s.node.n.Add(int64(s.bytes - before))
		}
	}()
	old, exists := s.kv[key]
	if exists {
		s.bytes -= len(key) + len(old)
	}
	if val == nil {
		delete(s.kv, key)
		if len(s.kv) == 0 {
			s.kv = nil // let a map that once was large go
		}
		return
	}
	if s.kv == nil {
		s.kv = make(map[string]protocol.Raw)
	}
	s.kv[key] = val
	s.bytes += len(key) + len(val)
}

// snapshot copies the map (never nil); the values are shared.
func (s *state) snapshot() map[string]protocol.Raw {
	out := make(map[string]protocol.Raw, len(s.kv))
	maps.Copy(out, s.kv)
	return out
}

// SetState sets a state key (Value non-nil) or deletes it (Value nil or
// msgpack nil). Every change, a delete of an absent key included, is a durable
// event with its own seq, delivered to every subscriber.
func (m *Manager) SetState(req SetRequest) (uint64, error) {
	if err := validName(req.Room); err != nil {
		return 0, err
	}
	ns := m.Settings(req.Room)
	switch {
	case req.Key == "":
		return 0, protocol.NewError(protocol.CodeBadRequest, "empty state key")
	case len(req.Key) > protocol.MaxStateKey:
		return 0, protocol.Errorf(protocol.CodeTooLarge, "state key over %d bytes", protocol.MaxStateKey)
	}
	var val protocol.Raw
	if !req.Value.IsNil() {
		if len(req.Value) > ns.StateMaxValueBytes {
			return 0, protocol.Errorf(protocol.CodeTooLarge, "state value over %d bytes", ns.StateMaxValueBytes)
		}
		if err := protocol.ValidatePayload(req.Value); err != nil {
			return 0, err
		}
		val = req.Value
	}
	if ns.APIPublishOnly && !req.FromAPI {
		return 0, protocol.Errorf(protocol.CodeForbidden, "only the API may set state in room %q", req.Room)
	}
	r, from, err := m.lockForWrite(req.Room, req.Conn, req.FromAPI)
	if err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	if req.FromAPI {
		defer r.touch()
	}
	if err := r.state.check(req.Key, val, r.ns); err != nil {
		if err == errNodeState {
			m.cfg.OnLimit(LimitNodeState)
		}
		return 0, err
	}
	now := m.now()
	if err := r.allow(from, now); err != nil {
		return 0, err
	}
	r.seq++
	ev := r.newState(r.seq, req.User, req.Conn, req.Key, val, now.UnixMilli())
	r.state.apply(req.Key, ev.Data) // the value is held once, inside the event's frame
	r.appendLog(ev, now)
	return r.seq, nil
}

// State returns a copy of the room's state (values shared) and its current
// seq; ok is false when the room does not exist.
func (m *Manager) State(room string) (map[string]protocol.Raw, uint64, bool) {
	r := m.lockLive(room)
	if r == nil {
		return nil, 0, false
	}
	defer r.mu.Unlock()
	return r.state.snapshot(), r.seq, true
}
