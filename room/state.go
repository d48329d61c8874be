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
	return nil
}

// checkNode reports whether setting key to val keeps the node within its
// state budget. It is checked where a write is prepared, never where it is
// applied: the node's count differs between nodes, and a replicated write
// must apply the same everywhere.
func (s *state) checkNode(key string, val protocol.Raw) error {
	if val == nil || s.node == nil {
		return nil
	}
	grow := int64(len(val))
	if old, exists := s.kv[key]; exists {
		grow -= int64(len(old))
	} else {
		grow += int64(len(key))
	}
	if grow > 0 && s.node.n.Load()+grow > s.node.max {
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
	for {
		cmd, err := m.PrepareSet(req)
		if err != nil {
			return 0, err
		}
		if seq, err := m.Apply(cmd); err != errStale {
			return seq, err
		}
	}
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
