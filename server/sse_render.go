package server

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/roomd/roomd/room"
)

// Rendering text/event-stream: the events of a batch, a join answer, ids
// and the stream's own lines (retry, ping, bye), the same for both writers
// (sse_http.go, sse_raw.go).

// writeBatch writes queued events. A KindLeft ends the batch: its code and
// message are returned as the stream's bye.
func (o *sseObserver) writeBatch(sw *sseWriter, batch []sseItem) *byeFrame {
	for _, it := range batch {
		ev := it.ev
		switch ev.Kind {
		case room.KindJoined:
			o.writeJoined(sw, ev)
		case room.KindMsg:
			sw.event("message", o.appendID(sw.id[:0], ev.Room, ev.Epoch, ev.Seq), eventJSON(ev))
		case room.KindState:
			sw.event("state", o.appendID(sw.id[:0], ev.Room, ev.Epoch, ev.Seq), eventJSON(ev))
		case room.KindPres:
			sw.event("presence", nil, eventJSON(ev))
		case room.KindEph:
			sw.event("ephemeral", nil, eventJSON(ev))
		case room.KindLeft:
			return &byeFrame{ev.Code, ev.Msg}
		}
		if sw.err != nil {
			return nil
		}
	}
	return nil
}

// writeJoined writes a join answer: the replayed log, or a snapshot.
func (o *sseObserver) writeJoined(sw *sseWriter, ev *room.Event) {
	j := ev.Joined
	if !j.Reset {
		for _, e := range j.Log {
			name := "message"
			if e.Kind == room.KindState {
				name = "state"
			}
			sw.event(name, o.appendID(sw.id[:0], ev.Room, e.Epoch, e.Seq), eventJSON(e))
		}
		return
	}
	data := snapshotJSON(ev.Room, j.Epoch, j.Seq, j.Presence, j.Count, j.State, j.Log)
	sw.event("snapshot", o.appendID(sw.id[:0], ev.Room, j.Epoch, j.Seq), data)
}

// appendID appends the id of a durable event (or snapshot) of a room at
// epoch:seq. A one-room stream's id is "{epoch}:{seq}"; a multi-room
// stream's is every room's position, "{room}={epoch}:{seq}" joined by ",",
// in the order the rooms were asked for (rooms with no position yet left
// out).
func (o *sseObserver) appendID(dst []byte, name, epoch string, seq uint64) []byte {
	if !o.multi {
		return appendPos(dst, epoch, seq)
	}
	if rm := o.room(name); rm != nil {
		rm.posEpoch, rm.posSeq, rm.hasPos = epoch, seq, true
	}
	first := true
	for _, rm := range o.rooms {
		if !rm.hasPos {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, rm.name...)
		dst = append(dst, '=')
		dst = appendPos(dst, rm.posEpoch, rm.posSeq)
	}
	return dst
}

func appendPos(dst []byte, epoch string, seq uint64) []byte {
	dst = append(dst, epoch...)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, seq, 10)
}

// sseWriter writes the text/event-stream format, keeping the first error.
type sseWriter struct {
	w      io.Writer
	err    error
	n      int // bytes written since the last flush
	events int
	line   []byte
	id     []byte
}

func (sw *sseWriter) put(b []byte) {
	if sw.err != nil || len(b) == 0 {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += n
	sw.err = err
}

// event writes one event; id nil means none. data is one line.
func (sw *sseWriter) event(name string, id, data []byte) {
	if id != nil {
		sw.id = id[:0]
	}
	l := append(sw.line[:0], "event: "...)
	l = append(l, name...)
	l = append(l, '\n')
	if id != nil {
		l = append(l, "id: "...)
		l = append(l, id...)
		l = append(l, '\n')
	}
	l = append(l, "data: "...)
	sw.line = l
	sw.put(l)
	sw.put(data)
	sw.put(eventEnd)
	sw.events++
}

var (
	eventEnd  = []byte("\n\n")
	pingBytes = []byte(": ping\n\n")
)

func (sw *sseWriter) ping() { sw.put(pingBytes) }

func (sw *sseWriter) retry(d time.Duration) {
	l := append(sw.line[:0], "retry: "...)
	l = strconv.AppendInt(l, d.Milliseconds(), 10)
	l = append(l, "\n\n"...)
	sw.line = l
	sw.put(l)
}

// bye writes the stream's last event: {"code","name","msg"}.
func (sw *sseWriter) bye(b byeFrame) {
	data, _ := json.Marshal(apiErrorBody{Code: b.code, Name: b.code.String(), Msg: b.msg})
	sw.event("bye", nil, data)
}
