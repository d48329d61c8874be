package room

import (
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
)

// Kind tells what an Event is.
type Kind uint8

// Event kinds.
const (
	KindMsg    Kind = iota + 1 // durable message (has Seq)
	KindState                  // durable state change (has Seq)
	KindEph                    // ephemeral message, never logged
	KindPres                   // presence delta
	KindJoined                 // the answer to this subscriber's Join; carries Joined
	KindLeft                   // the room removed this subscriber (kick); carries Code and Msg
)

func (k Kind) String() string {
	switch k {
	case KindMsg:
		return "msg"
	case KindState:
		return "state"
	case KindEph:
		return "eph"
	case KindPres:
		return "pres"
	case KindJoined:
		return "joined"
	case KindLeft:
		return "left"
	}
	return "unknown"
}

// Event is one thing a room hands to its subscribers. Events are immutable
// once delivered and shared by every subscriber: nobody may modify one.
//
// Frame is the protocol frame, encoded once, for WebSocket subscribers. It is
// set for KindMsg, KindState, KindEph and KindPres. KindJoined and KindLeft are
// addressed to one subscriber and leave Frame nil: the subscriber encodes them.
type Event struct {
	Kind  Kind
	Room  string
	Epoch string
	Seq   uint64 // KindMsg, KindState
	Frame []byte

	// The event's fields, for subscribers that speak another encoding (SSE).
	User string       // sender's user id, "" when anonymous or from the API
	Conn string       // sender's connection id, "" from the API
	Data protocol.Raw // msg, eph, state value (nil when Deleted)
	TS   int64        // unix ms
	// Created is when a durable event was built, in unix ns by the wall
	// clock (never the Config.Now clock), for latency measurements.
	Created int64
	Key     string // state key
	Deleted bool   // state key deleted
	Join    []protocol.Member
	Leave   []string
	Upd     []protocol.Member
	// Count is the room's entry count, in large-room mode (instead of
	// Join, Leave and Upd); All is every entry, when the room leaves it.
	Count int
	All   []protocol.Member

	Joined *Joined       // KindJoined
	Code   protocol.Code // KindLeft
	Msg    string        // KindLeft

	altOnce sync.Once
	alt     []byte

	deflateOnce sync.Once
	deflated    []byte
}

// Alt returns the event's encoding for a second wire (SSE's JSON), computed
// once with enc however many subscribers ask for it.
func (e *Event) Alt(enc func(*Event) []byte) []byte {
	e.altOnce.Do(func() { e.alt = enc(e) })
	return e.alt
}

// Deflated returns the event's Frame compressed by deflate (for the
// WebSocket connections that negotiated compression), computed once
// however many subscribers ask for it.
func (e *Event) Deflated(deflate func([]byte) []byte) []byte {
	e.deflateOnce.Do(func() { e.deflated = deflate(e.Frame) })
	return e.deflated
}

// Joined is the answer to a Join, delivered to the joining subscriber as a
// KindJoined event before any live event of the room.
type Joined struct {
	ID    uint64 // the join request's id, echoed
	Epoch string
	Seq   uint64   // the room's current seq
	Log   []*Event // KindMsg and KindState events, in seq order
	Reset bool     // continuity from Since could not be kept (or no Since)
	// Presence is the snapshot of members (empty when the namespace has
	// presence off); in large-room mode, a sample of at most PresenceSample.
	Presence []protocol.Member
	// Count is the number of entries, set in large-room mode only.
	Count int
	// State is the full state snapshot; set only when Reset is true.
	State map[string]protocol.Raw
}

// Subscriber receives a room's events.
type Subscriber interface {
	// Deliver hands ev to the subscriber. The room calls it with its lock
	// held, in the room's order, so Deliver must never block and must never
	// call back into the room or the Manager.
	Deliver(ev *Event)
}

// JoinRequest asks to join a room as a member (with presence) or as an
// observer (SSE, no presence entry).
type JoinRequest struct {
	ID       uint64 // request id, echoed in Joined
	Room     string
	Conn     string          // connection id; unique per live connection
	User     string          // user id, "" when anonymous
	Info     protocol.Raw    // token info, shown in presence as i
	Presence protocol.Raw    // initial presence data
	Since    *protocol.Since // resume point, nil for none
	History  int             // recent messages wanted on reset
	Observer bool            // no presence entry, not counted as a member
	// Known lists the presence entries the joiner's node has seen in the
	// room, for a re-join where the room is served anew (replica.go): an
	// entry nobody brings back is broadcast as gone once.
	Known []string
}

// PublishRequest publishes a message. Conn and User are empty when it comes
// from the HTTP API.
type PublishRequest struct {
	Room      string
	Conn      string
	User      string
	Data      protocol.Raw
	Ephemeral bool
	Key       string // idempotency key, "" for none
	// FromAPI marks a publish by an app backend: it bypasses the namespace's
	// ClientPublish setting and per-member rate limits.
	FromAPI bool
}

// SetRequest sets (Value non-nil) or deletes (Value nil or msgpack nil) a
// state key.
type SetRequest struct {
	Room    string
	Conn    string
	User    string
	Key     string
	Value   protocol.Raw
	FromAPI bool
}

// PresenceRequest replaces a member's presence data.
type PresenceRequest struct {
	Room string
	Conn string
	Data protocol.Raw
}

// Info describes a live room.
type Info struct {
	Room      string
	Epoch     string
	Seq       uint64
	Members   int
	Observers int
}

// Stats counts what a Manager holds.
type Stats struct {
	Rooms      int
	Members    int // presence entries, graced ones included
	Observers  int
	StateBytes int64 // state keys and values of every room (Config.MaxStateBytes)
}

// Namespace holds per-namespace settings. Every zero value means the default
// given on the field.
type Namespace struct {
	// HistorySize bounds a room's history by count. Zero means 100.
	HistorySize int
	// HistoryTTL bounds a room's history by age. Zero means 10 minutes.
	HistoryTTL time.Duration
	// IdleTTL is how long a room with no members and no observers lives on
	// (with its history and state) before it is dropped. Zero means HistoryTTL.
	IdleTTL time.Duration
	// NoPresence turns presence off: no snapshot, no deltas, pres ops refused.
	NoPresence bool
	// MaxMembers bounds the members of a room (observers not counted).
	// Zero means no limit.
	MaxMembers int
	// MaxMessageBytes bounds a message or ephemeral payload. Zero means 64 KiB.
	MaxMessageBytes int
	// MaxPresenceBytes bounds a member's presence data. Zero means 1 KiB.
	MaxPresenceBytes int
	// StateMaxKeys bounds a room's state by key count. Zero means 10,000.
	StateMaxKeys int
	// StateMaxBytes bounds a room's state by the sum of key and value bytes.
	// Zero means 4 MiB.
	StateMaxBytes int
	// StateMaxValueBytes bounds one state value. Zero means MaxMessageBytes.
	StateMaxValueBytes int
	// APIPublishOnly refuses pub and set from clients (forbidden); only the
	// HTTP API may write. Zero (false) lets members publish.
	APIPublishOnly bool
	// PublishRate and PublishBurst bound each member's durable and ephemeral
	// publishes per second in one room. Zero PublishRate means no per-room
	// limit (the connection's own limit still applies); zero PublishBurst
	// means twice PublishRate.
	PublishRate  float64
	PublishBurst int
	// RoomPublishRate and RoomPublishBurst bound the publishes per second of
	// one room, all its members and the API together (durable and ephemeral
	// publishes and state sets): what a room may ask of the node's fan-out.
	// Beyond it a publish is refused with rate_limited, so the room's
	// readers keep their latency when publishers offer more than the node
	// delivers. Zero RoomPublishRate means no limit; zero RoomPublishBurst
	// means a tenth of a second's worth (at least 1).
	RoomPublishRate  float64
	RoomPublishBurst int
	// PresenceLarge is the entry count above which a room is in large-room
	// mode: members get the count (and a sample in joined) instead of every
	// presence change. Zero means no threshold.
	PresenceLarge int
	// Compression lets the room's events go compressed (permessage-deflate)
	// to the WebSocket members that negotiated it; the room itself does
	// nothing different (Event.Deflated). Zero (false): never compressed.
	Compression bool
}

// Config configures a Manager.
type Config struct {
	// Default applies to rooms whose namespace is not in Namespaces.
	Default Namespace
	// Namespaces maps a namespace (the part of a room name before its first
	// ':') to its settings. Fields left zero take their defaults, not
	// Default's values.
	Namespaces map[string]Namespace
	// PresenceGrace is how long a dropped connection's presence entry stays
	// before its leave is broadcast, so a quick reconnect does not flicker.
	// Zero means 5 s; negative means no grace.
	PresenceGrace time.Duration
	// PresenceWindow is how long a room gathers presence changes before it
	// sends them as one pres event (at most MaxPresenceWindow). Zero means
	// DefaultPresenceWindow; negative means each change goes out at once.
	PresenceWindow time.Duration
	// PresenceWindowMax is how long a busy room's window may grow: a window
	// that opens right after the last one is twice as long, up to this
	// (presbatch.go). Zero means DefaultPresenceWindowMax; at most
	// MaxPresenceWindow; not above PresenceWindow means no growth.
	PresenceWindowMax time.Duration
	// DedupeWindow is how long idempotency keys are remembered. Zero means
	// 5 minutes; it is never less than 5 minutes.
	DedupeWindow time.Duration
	// DedupeMaxKeys bounds the idempotency keys remembered per room; the
	// oldest are forgotten first. Zero means 10,000.
	DedupeMaxKeys int
	// MaxRooms bounds the rooms this node holds: a join or write that
	// would create one more gets err 7 overloaded. Rooms handed over from
	// another node are not refused. Zero means 100,000.
	MaxRooms int
	// MaxStateBytes bounds the state (keys and values) of all this node's
	// rooms together: a set that would grow it further gets err 7
	// overloaded. Zero means 256 MiB.
	MaxStateBytes int64
	// CreateRate is the rooms per second one user (an anonymous member:
	// one connection) may create on this node, in bursts of CreateBurst;
	// beyond, the join gets err 5 rate_limited. Writes of the HTTP API are
	// not limited. Zero means 10.
	CreateRate float64
	// CreateBurst is the burst of CreateRate. Zero means 10 × CreateRate.
	CreateBurst int
	// OnLimit, when set, is called with a limit's name ("node_rooms",
	// "node_state", "room_create_rate") each time it refuses an operation
	// (for metrics). It may be called with locks held: it must be cheap
	// and must not call the Manager.
	OnLimit func(limit string)
	// Now returns the current time. Zero means time.Now.
	Now func() time.Time
	// Replicated makes the Manager a replica of a log of Commands
	// (command.go): a Join never creates a room (ErrNoRoom), and durable
	// changes are made by Apply alone. False: it serves its rooms alone.
	Replicated bool
	// OnIdle, when set, is called (with no lock held) instead of dropping a
	// room that stayed empty for its IdleTTL: the room is closing, and the
	// caller either applies a CmdDrop of (room, epoch, seq) or calls Reopen.
	// Nil: the Manager drops idle rooms itself.
	OnIdle func(room, epoch string, seq uint64)

	onOccupancy func(room string) // WatchOccupancy
}
