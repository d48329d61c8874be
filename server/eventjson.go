package server

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// The JSON objects of room events, shared by SSE observers and the HTTP API
// (PROTOCOL §3, §4). Payloads are transcoded with protocol.AppendJSON; a
// payload JSON cannot express (a map or array used as a map key) shows as
// null. Keys listed for an object are always present.

// eventJSON returns the JSON object of a msg, state, eph or pres event:
//
//	msg:   {"room","seq","user","conn","data","ts"}
//	state: {"room","seq","key","data","deleted","ts"}  (data null when deleted)
//	eph:   {"room","user","conn","data"}
//	pres:  {"room","join":[member],"leave":[conn id],"update":[member]}
//
// Other kinds yield {"room"}. It is the data of the event's SSE frame
// (sseFrame), so encoded once however many observers and API calls ask for
// it; the caller must not append to it.
func eventJSON(ev *room.Event) []byte {
	f := sseFrame(ev)
	_, data := splitFrame(f)
	return data[len(dataPrefix) : len(data)-2 : len(data)-2]
}

// sseFrame returns the event as one event of a one-room SSE stream,
// encoded once for every observer of the room (room.Event.Alt):
//
//	event: {name}\n[id: {epoch}:{seq}\n]data: {eventJSON}\n\n
//
// with an id for messages and state changes. A multi-room stream writes the
// same frame with its own id line instead (sse_render.go).
func sseFrame(ev *room.Event) []byte { return ev.Alt(encodeSSEFrame) }

// frameEncodes counts the frames encoded, for tests of the sharing.
var frameEncodes atomic.Int64

func encodeSSEFrame(ev *room.Event) []byte {
	frameEncodes.Add(1)
	b := make([]byte, 0, 128+len(ev.Epoch)+2*len(ev.Data))
	b = append(b, "event: "...)
	b = append(b, sseEventName(ev.Kind)...)
	b = append(b, '\n')
	if ev.Kind == room.KindMsg || ev.Kind == room.KindState {
		b = append(b, "id: "...)
		b = appendPos(b, ev.Epoch, ev.Seq)
		b = append(b, '\n')
	}
	b = append(b, dataPrefix...)
	b = appendEventJSON(b, ev)
	return append(b, "\n\n"...)
}

// sseEventName is the SSE event name of a room event's kind.
func sseEventName(k room.Kind) string {
	switch k {
	case room.KindMsg:
		return "message"
	case room.KindState:
		return "state"
	case room.KindPres:
		return "presence"
	case room.KindEph:
		return "ephemeral"
	}
	return "event"
}

const dataPrefix = "data: "

// splitFrame splits an sseFrame into its event line ("event: {name}\n")
// and its data line with the frame's end ("data: {json}\n\n"), leaving the
// id line out.
func splitFrame(f []byte) (head, data []byte) {
	i := bytes.IndexByte(f, '\n') + 1
	head, data = f[:i:i], f[i:]
	if bytes.HasPrefix(data, []byte("id: ")) {
		data = data[bytes.IndexByte(data, '\n')+1:]
	}
	return head, data
}

// appendEventJSON appends eventJSON's object.
func appendEventJSON(b []byte, ev *room.Event) []byte {
	b = append(b, `{"room":`...)
	b = protocol.AppendJSONString(b, ev.Room)
	switch ev.Kind {
	case room.KindMsg:
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, ev.Seq, 10)
		b = appendSenderJSON(b, ev)
		b = append(b, `,"data":`...)
		b = appendPayloadJSON(b, ev.Data)
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ev.TS, 10)
	case room.KindState:
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, ev.Seq, 10)
		b = append(b, `,"key":`...)
		b = protocol.AppendJSONString(b, ev.Key)
		b = append(b, `,"data":`...)
		if ev.Deleted {
			b = append(b, "null"...)
		} else {
			b = appendPayloadJSON(b, ev.Data)
		}
		b = append(b, `,"deleted":`...)
		b = strconv.AppendBool(b, ev.Deleted)
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ev.TS, 10)
	case room.KindEph:
		b = appendSenderJSON(b, ev)
		b = append(b, `,"data":`...)
		b = appendPayloadJSON(b, ev.Data)
	case room.KindPres:
		b = append(b, `,"join":`...)
		b = appendMembersJSON(b, ev.Join)
		b = append(b, `,"leave":[`...)
		for i, c := range ev.Leave {
			if i > 0 {
				b = append(b, ',')
			}
			b = protocol.AppendJSONString(b, c)
		}
		b = append(b, `],"update":`...)
		b = appendMembersJSON(b, ev.Upd)
		if ev.Count > 0 {
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, int64(ev.Count), 10)
		}
		if ev.All != nil {
			b = append(b, `,"all":`...)
			b = appendMembersJSON(b, ev.All)
		}
	}
	return append(b, '}')
}

func appendSenderJSON(b []byte, ev *room.Event) []byte {
	b = append(b, `,"user":`...)
	b = protocol.AppendJSONString(b, ev.User)
	b = append(b, `,"conn":`...)
	return protocol.AppendJSONString(b, ev.Conn)
}

// logEntryType is the "type" of a durable event in a snapshot's log or the
// API's history: "message" or "state".
func logEntryType(ev *room.Event) string {
	if ev.Kind == room.KindState {
		return "state"
	}
	return "message"
}

// appendLogEntryJSON appends a durable event's object with a leading
// "type": {"type":"message",...} or {"type":"state",...}.
func appendLogEntryJSON(b []byte, ev *room.Event) []byte {
	obj := eventJSON(ev)
	b = append(b, `{"type":"`...)
	b = append(b, logEntryType(ev)...)
	b = append(b, `",`...)
	return append(b, obj[1:]...) // obj is {"room":...}: never empty
}

// appendLogJSON appends durable events as an array of log entries.
func appendLogJSON(b []byte, log []*room.Event) []byte {
	return appendArrayJSON(b, log, appendLogEntryJSON)
}

// appendArrayJSON appends xs as a JSON array (never null), each element
// appended by each.
func appendArrayJSON[T any](b []byte, xs []T, each func([]byte, T) []byte) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, x)
	}
	return append(b, ']')
}

// appendPayloadJSON appends a payload's JSON form; null when it is absent or
// cannot be expressed in JSON.
func appendPayloadJSON(b []byte, p protocol.Raw) []byte {
	out, err := protocol.AppendJSON(b, p)
	if err != nil {
		return append(b, "null"...)
	}
	return out
}

// memberJSON appends a presence entry's object:
// {"conn","user","data","info"}, user and info left out when empty.
func memberJSON(b []byte, m protocol.Member) []byte {
	b = append(b, `{"conn":`...)
	b = protocol.AppendJSONString(b, m.C)
	if m.U != "" {
		b = append(b, `,"user":`...)
		b = protocol.AppendJSONString(b, m.U)
	}
	b = append(b, `,"data":`...)
	b = appendPayloadJSON(b, m.D)
	if !m.I.IsNil() {
		b = append(b, `,"info":`...)
		b = appendPayloadJSON(b, m.I)
	}
	return append(b, '}')
}

// appendMembersJSON appends presence entries as an array (never null).
func appendMembersJSON(b []byte, ms []protocol.Member) []byte {
	return appendArrayJSON(b, ms, memberJSON)
}

// appendStateJSON appends a state snapshot as an object, keys sorted.
func appendStateJSON(b []byte, state map[string]protocol.Raw) []byte {
	keys := slices.Sorted(maps.Keys(state))
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = protocol.AppendJSONString(b, k)
		b = append(b, ':')
		b = appendPayloadJSON(b, state[k])
	}
	return append(b, '}')
}

// snapshotJSON is the data of an SSE snapshot:
// {"room","epoch","seq","presence":[member],"count"?,"state":{key: value},"log":[entry]},
// where log entries are event objects with a "type" of "message" or "state",
// and count (the number of members) is there in large-room mode only.
func snapshotJSON(name, epoch string, seq uint64, presence []protocol.Member, count int, state map[string]protocol.Raw, log []*room.Event) []byte {
	n := 64 + 64*len(presence) + 128*len(log)
	for k, v := range state {
		n += len(k) + 2*len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, `{"room":`...)
	b = protocol.AppendJSONString(b, name)
	b = append(b, `,"epoch":`...)
	b = protocol.AppendJSONString(b, epoch)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"presence":`...)
	b = appendMembersJSON(b, presence)
	if count > 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(count), 10)
	}
	b = append(b, `,"state":`...)
	b = appendStateJSON(b, state)
	b = append(b, `,"log":`...)
	b = appendLogJSON(b, log)
	return append(b, '}')
}
