package histcheck

import (
	"slices"
	"sync"
	"time"

	"github.com/roomd/roomd/protocol"
)

// Op is the kind of a recorded event.
type Op uint8

const (
	// OpPub is a publisher's attempt to send a durable message (Key).
	OpPub Op = iota + 1
	// OpAck is the ok of a publish: Key, Seq, and the Epoch the publisher's
	// connection had joined.
	OpAck
	// OpPubErr is an err answering a publish (Key, Code, Err), or a
	// publish given up (Code 0).
	OpPubErr
	// OpJoined is a joined answer: Epoch, Seq, Reset. For a resume (Reset
	// false) it is recorded after the events of its log, so that Seq can be
	// checked against the last of them.
	OpJoined
	// OpDeliver is a durable event a subscriber received, live or in a
	// joined log: Seq and the logical id (Key) read from its payload.
	OpDeliver
	// OpLeft is a left frame (Code), or a bye (Code, Err "bye").
	OpLeft
	// OpReconnect is a new connection of a client, to Node (Err: why the
	// previous one ended).
	OpReconnect
	// OpJoinErr is an err answering a join (Code, Err).
	OpJoinErr
)

// String names the op.
func (o Op) String() string {
	switch o {
	case OpPub:
		return "pub"
	case OpAck:
		return "ack"
	case OpPubErr:
		return "pub-err"
	case OpJoined:
		return "joined"
	case OpDeliver:
		return "deliver"
	case OpLeft:
		return "left"
	case OpReconnect:
		return "reconnect"
	case OpJoinErr:
		return "join-err"
	}
	return "op?"
}

// Event is one thing a client did or saw.
type Event struct {
	Op     Op
	Room   string
	Client string // the publisher or subscriber that recorded it
	Node   string // the node its connection was on
	Key    string // the message's logical id (its idempotency key)
	Epoch  string
	Seq    uint64
	Reset  bool
	Code   protocol.Code
	Err    string
	At     time.Time
}

// Entry is one durable event of a room as fetched at the end.
type Entry struct {
	Seq uint64
	Key string
}

// Final is a room's history as one node's HTTP API gave it at the end.
type Final struct {
	Node  string
	Epoch string
	// Seq is the room's current seq.
	Seq uint64
	// Entries are the history's events, oldest first; history is bounded,
	// so they may start after seq 1.
	Entries []Entry
}

// History is the record of a run. It is safe for concurrent use.
type History struct {
	mu     sync.Mutex
	events []Event
	finals map[string][]Final
	counts map[Op]int
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{finals: map[string][]Final{}, counts: map[Op]int{}} }

// Add records an event, stamping its time when it has none.
func (h *History) Add(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	h.mu.Lock()
	h.events = append(h.events, e)
	h.counts[e.Op]++
	h.mu.Unlock()
}

// Count is the number of events of op recorded so far.
func (h *History) Count(op Op) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[op]
}

// AddFinal records a room's history as fetched at the end.
func (h *History) AddFinal(room string, f Final) {
	h.mu.Lock()
	h.finals[room] = append(h.finals[room], f)
	h.mu.Unlock()
}

// Events returns a copy of the events recorded so far, in order.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// Rooms lists the rooms the history mentions, sorted.
func (h *History) Rooms() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range h.events {
		if e.Room != "" {
			seen[e.Room] = true
		}
	}
	for r := range h.finals {
		seen[r] = true
	}
	var out []string
	for r := range seen {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
