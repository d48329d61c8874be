package room

import (
	"bytes"
	"time"

	"github.com/roomd/roomd/protocol"
)

// The builders of a room's shared events. Each encodes its frame once. An
// event's Data aliases the payload's bytes inside its Frame (found at the
// offset the encoding puts it, and checked), so history and state hold each
// payload once and never alias a caller's buffer, which may be reused.

// newMsg builds a durable message event. r.mu is held on entry.
func (r *room) newMsg(seq uint64, user, conn string, data protocol.Raw, ts int64) *Event {
	ev := &Event{Kind: KindMsg, Room: r.name, Epoch: r.epoch, Seq: seq, User: user, Conn: conn, TS: ts, Created: time.Now().UnixNano()}
	ev.Frame = protocol.MustEncode(&protocol.Msg{T: protocol.TypeMsg, R: r.name, S: seq, U: user, C: conn, D: data, TS: ts})
	// Msg encodes d, then ts.
	ev.Data = alias(ev.Frame, data, strLen(2)+uintLen(ts))
	return ev
}

// newState builds a durable state change event; a nil val is a delete.
// r.mu is held on entry.
func (r *room) newState(seq uint64, user, conn, key string, val protocol.Raw, ts int64) *Event {
	ev := &Event{Kind: KindState, Room: r.name, Epoch: r.epoch, Seq: seq, User: user, Conn: conn, TS: ts, Key: key, Deleted: val == nil, Created: time.Now().UnixNano()}
	ev.Frame = protocol.MustEncode(&protocol.State{T: protocol.TypeState, R: r.name, S: seq, K: key, D: val, U: user, TS: ts})
	// State encodes d, then u (omitted when empty), then ts.
	tail := strLen(2) + uintLen(ts)
	if user != "" {
		tail += strLen(1) + strLen(len(user))
	}
	ev.Data = alias(ev.Frame, val, tail)
	return ev
}

// newEph builds an ephemeral event. r.mu is held on entry.
func (r *room) newEph(user, conn string, data protocol.Raw) *Event {
	ev := &Event{Kind: KindEph, Room: r.name, Epoch: r.epoch, User: user, Conn: conn}
	ev.Frame = protocol.MustEncode(&protocol.Eph{T: protocol.TypeEph, R: r.name, U: user, C: conn, D: data})
	ev.Data = alias(ev.Frame, data, 0) // d is the last key
	return ev
}

// presEvent builds a presence event; nil when the namespace has presence
// off. r.mu is held on entry.
func (r *room) presEvent(ch presChange) *Event {
	if r.ns.NoPresence {
		return nil
	}
	return ch.event(r.name, r.epoch)
}

// alias returns the copy of data that frame holds tail bytes before its end,
// or a fresh copy of data if it is not there. nil for an absent payload.
func alias(frame []byte, data protocol.Raw, tail int) protocol.Raw {
	if len(data) == 0 {
		return nil
	}
	end := len(frame) - tail
	start := end - len(data)
	if tail >= 0 && start >= 0 && bytes.Equal(frame[start:end], data) {
		return protocol.Raw(frame[start:end:end])
	}
	return bytes.Clone(data)
}

// strLen is the msgpack size of a string of n bytes.
func strLen(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n < 256:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	}
	return 5 + n
}

// uintLen is the compact msgpack size of a non-negative integer; for a
// negative one, a negative size that makes alias copy.
func uintLen(n int64) int {
	switch {
	case n < 0:
		return -1 << 20
	case n <= 0x7f:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}
