package cluster

import (
	"errors"
	"math"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// The frames of a peer link, msgpack maps, several per WebSocket message.
// Requests (q) go to a room's owner and get one answer (a) each; events (e)
// go from an owner to the nodes with members in a room, in the room's order.
const (
	lfRequest = "q"
	lfAnswer  = "a"
	lfEvent   = "e"
	lfRaft    = "r" // raft messages (RM), batched
	lfLeader  = "l" // the sender now leads partition Part
	lfRemoved = "x" // replica S of partition Part was removed from its group
	lfQuiesce = "z" // the groups in Q sleep (quiesce.go)
)

// Link ops.
const (
	opJoin     = "join"
	opLeave    = "leave"
	opDrop     = "drop"
	opPub      = "pub"
	opSet      = "set"
	opPres     = "pres"
	opInfo     = "info"
	opPresence = "presence"
	opState    = "state"
	opHistory  = "history"
	opKick     = "kick"
	opRooms    = "rooms"
)

// linkFrame is one frame on a peer link. Unused keys stay empty.
type linkFrame struct {
	T     string          `msgpack:"t"`
	ID    uint64          `msgpack:"id,omitempty"`
	Op    string          `msgpack:"op,omitempty"`
	R     string          `msgpack:"r,omitempty"`
	C     string          `msgpack:"c,omitempty"` // connection
	U     string          `msgpack:"u,omitempty"` // user
	I     protocol.Raw    `msgpack:"i,omitempty"` // token info
	P     protocol.Raw    `msgpack:"p,omitempty"` // presence data
	D     protocol.Raw    `msgpack:"d,omitempty"` // payload, state value
	K     string          `msgpack:"k,omitempty"` // state key, idempotency key for pub
	Eph   bool            `msgpack:"eph,omitempty"`
	Obs   bool            `msgpack:"obs,omitempty"`
	API   bool            `msgpack:"api,omitempty"`
	Since *protocol.Since `msgpack:"since,omitempty"`
	H     int             `msgpack:"h,omitempty"`
	Part  int             `msgpack:"part,omitempty"`
	Owner string          `msgpack:"o,omitempty"` // the sender's view of the room's owner
	S     uint64          `msgpack:"s,omitempty"`
	N     int             `msgpack:"n,omitempty"`
	Code  protocol.Code   `msgpack:"code,omitempty"`
	Msg   string          `msgpack:"msg,omitempty"`
	Err   bool            `msgpack:"err,omitempty"`
	Kind  room.Kind       `msgpack:"kd,omitempty"`
	Epoch string          `msgpack:"ep,omitempty"`
	F     []byte          `msgpack:"f,omitempty"` // an event's encoded frame
	B     []byte          `msgpack:"b,omitempty"` // an op's encoded body
	RM    []raftWire      `msgpack:"rm,omitempty"`
	Kn    []string        `msgpack:"kn,omitempty"` // join: presence entries the edge has seen (room.JoinRequest.Known)
	Q     []quiesceWire   `msgpack:"q,omitempty"`
}

// joinedWire carries a room.Joined over a link.
type joinedWire struct {
	ID    uint64                  `msgpack:"id"`
	Epoch string                  `msgpack:"e"`
	Seq   uint64                  `msgpack:"s"`
	Reset bool                    `msgpack:"reset"`
	Log   [][]byte                `msgpack:"log"`
	Pres  []protocol.Member       `msgpack:"pres"`
	St    map[string]protocol.Raw `msgpack:"st"`
	Cnt   int                     `msgpack:"cnt,omitempty"` // large-room mode: the entry count
}

func encodeJoined(j *room.Joined) []byte {
	w := joinedWire{ID: j.ID, Epoch: j.Epoch, Seq: j.Seq, Reset: j.Reset, Pres: j.Presence, St: j.State, Cnt: j.Count}
	w.Log = make([][]byte, len(j.Log))
	for i, ev := range j.Log {
		w.Log[i] = ev.Frame
	}
	b, _ := msgpack.Marshal(&w)
	return b
}

func decodeJoined(roomName string, b []byte) (*room.Joined, error) {
	var w joinedWire
	if err := msgpack.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	j := &room.Joined{ID: w.ID, Epoch: w.Epoch, Seq: w.Seq, Reset: w.Reset, Presence: w.Pres, State: w.St, Count: w.Cnt}
	if j.Presence == nil {
		j.Presence = []protocol.Member{}
	}
	if j.Reset && j.State == nil {
		j.State = map[string]protocol.Raw{}
	}
	j.Log = make([]*room.Event, 0, len(w.Log))
	for _, f := range w.Log {
		ev, err := eventFromFrame(roomName, w.Epoch, f)
		if err != nil {
			return nil, err
		}
		j.Log = append(j.Log, ev)
	}
	return j, nil
}

// eventFromFrame rebuilds a shared event from its encoded frame, so that
// an edge's subscribers see the same fields the owner's do.
func eventFromFrame(roomName, epoch string, frame []byte) (*room.Event, error) {
	var f protocol.Frame
	if err := protocol.DecodeFrame(frame, &f); err != nil {
		return nil, err
	}
	ev := &room.Event{Room: roomName, Epoch: epoch, Frame: frame, User: f.U, Conn: f.C, TS: f.TS}
	switch f.T {
	case protocol.TypeMsg:
		ev.Kind, ev.Seq, ev.Data = room.KindMsg, f.S, f.D
	case protocol.TypeState:
		ev.Kind, ev.Seq, ev.Key = room.KindState, f.S, f.K
		ev.Deleted = f.D == nil
		ev.Data = f.D
	case protocol.TypeEph:
		ev.Kind, ev.Data = room.KindEph, f.D
	case protocol.TypePres:
		ev.Kind = room.KindPres
		if err := unmarshalRaw(f.Join, &ev.Join); err != nil {
			return nil, err
		}
		if err := unmarshalRaw(f.Upd, &ev.Upd); err != nil {
			return nil, err
		}
		if err := unmarshalRaw(f.Leave, &ev.Leave); err != nil {
			return nil, err
		}
		if err := unmarshalRaw(f.All, &ev.All); err != nil {
			return nil, err
		}
		ev.Count = int(min(f.Cnt, uint64(math.MaxInt32)))
	default:
		return nil, protocol.Errorf(protocol.CodeBadRequest, "not an event frame: %q", f.T)
	}
	return ev, nil
}

func unmarshalRaw(raw protocol.Raw, v any) error {
	if raw.IsNil() {
		return nil
	}
	return msgpack.Unmarshal(raw, v)
}

// linkErr is the answer to a failed request.
func linkErr(err error) (protocol.Code, string) {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code, pe.Msg
	}
	return protocol.CodeInternal, err.Error()
}
