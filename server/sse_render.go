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
		case room.KindMsg, room.KindState:
			o.writeDurable(sw, ev.Room, ev)
		case room.KindPres, room.KindEph:
			sw.frame(sseFrame(ev))
		case room.KindLeft:
			return &byeFrame{ev.Code, ev.Msg}
		}
		if sw.err != nil {
			return nil
		}
	}
	return nil
}

// writeDurable writes a message or state change of the room name: the
// shared frame as it is in a one-room stream; in a multi-room stream, the
// frame's event and data lines around the stream's own id.
func (o *sseObserver) writeDurable(sw *sseWriter, name string, ev *room.Event) {
	f := sseFrame(ev)
	if !o.multi {
		sw.frame(f)
		return
	}
	head, data := splitFrame(f)
	id := o.appendID(sw.id[:0], name, ev.Epoch, ev.Seq)
	sw.id = id[:0]
	sw.put(head)
	sw.putString("id: ")
	sw.put(id)
	sw.putString("\n")
	sw.put(data)
	sw.events++
}

// writeJoined writes a join answer: the replayed log, or a snapshot.
func (o *sseObserver) writeJoined(sw *sseWriter, ev *room.Event) {
	j := ev.Joined
	if !j.Reset {
		for _, e := range j.Log {
			o.writeDurable(sw, ev.Room, e)
		}
		return
	}
	data := snapshotJSON(ev.Room, j.Epoch, j.Seq, j.Presence, j.Count, j.State, j.Log)
	id := o.appendID(sw.id[:0], ev.Room, j.Epoch, j.Seq)
	sw.id = id[:0]
	sw.event("snapshot", id, data)
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

// sseWriter writes the text/event-stream format, keeping the first error:
// to w, or, when w is nil, appended to buf.
type sseWriter struct {
	w      io.Writer
	buf    []byte
	err    error
	n      int // bytes written since the last flush
	events int
	id     []byte // a multi-room id's buffer
}

// reset starts a write into buf (w nil).
func (sw *sseWriter) reset(buf []byte) {
	sw.buf, sw.n, sw.events, sw.err = buf, 0, 0, nil
}

func (sw *sseWriter) put(b []byte) {
	if sw.err != nil || len(b) == 0 {
		return
	}
	if sw.w == nil {
		sw.buf = append(sw.buf, b...)
		sw.n += len(b)
		return
	}
	n, err := sw.w.Write(b)
	sw.n += n
	sw.err = err
}

func (sw *sseWriter) putString(s string) {
	if sw.err != nil || s == "" {
		return
	}
	if sw.w == nil {
		sw.buf = append(sw.buf, s...)
		sw.n += len(s)
		return
	}
	n, err := io.WriteString(sw.w, s)
	sw.n += n
	sw.err = err
}

// frame writes a whole event (sseFrame).
func (sw *sseWriter) frame(f []byte) {
	sw.put(f)
	sw.events++
}

// event writes one event of the stream's own (snapshot, bye); id nil means
// none. data is one line.
func (sw *sseWriter) event(name string, id, data []byte) {
	sw.putString("event: ")
	sw.putString(name)
	if id != nil {
		sw.putString("\nid: ")
		sw.put(id)
	}
	sw.putString("\n" + dataPrefix)
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
	sw.putString("retry: ")
	sw.putString(strconv.FormatInt(d.Milliseconds(), 10))
	sw.putString("\n\n")
}

// bye writes the stream's last event: {"code","name","msg"}.
func (sw *sseWriter) bye(b byeFrame) {
	data, _ := json.Marshal(apiErrorBody{Code: b.code, Name: b.code.String(), Msg: b.msg})
	sw.event("bye", nil, data)
}
