package bench

import (
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// publisher sends pub frames at a fixed rate on its connection. Every pub
// carries an id, so the server's ok (or err) tells which were accepted.
type publisher struct {
	id    uint32 // global publisher id, carried in each payload
	local int    // index in its room's pubs
	room  *roomState
	conn  *wsConn
	rate  float64 // messages per second
	phase float64 // start offset, as a fraction of the interval

	// baseID is the pub id of the first measured message (0 before): a
	// measured message's counter is its id minus baseID.
	baseID atomic.Uint64

	sent     atomic.Int64 // frames written, any phase
	measured atomic.Int64 // measured frames written
	acked    atomic.Int64 // measured frames acknowledged with ok
	rejected atomic.Int64 // measured frames answered with err
	accepted bitset       // measured counters acknowledged; reader goroutine only
	stopped  atomic.Bool  // the publisher gave up (write failed)

	// sentAt holds the send times of the latest pubs, by id modulo its
	// length (a power of two), so that an ok can be timed (ackLatency).
	sentAt []sentSlot
}

// sentSlot is one pub's send time. The writer stores ns then id; the reader
// loads id, ns and id again, so a slot reused while it reads is not timed.
type sentSlot struct {
	id atomic.Uint64
	ns atomic.Int64
}

// sentRing sizes a publisher's sentAt for its rate: its pubs of the last
// 4 s (at least 64, at most 65,536). A pub answered later than that, after
// its slot was reused, is acknowledged but not timed.
func sentRing(rate float64) []sentSlot {
	n := 64
	for float64(n) < 4*rate && n < 1<<16 {
		n <<= 1
	}
	return make([]sentSlot, n)
}

// markSent records that pub id was written at ns.
func (p *publisher) markSent(id uint64, ns int64) {
	if len(p.sentAt) == 0 {
		return
	}
	s := &p.sentAt[id&uint64(len(p.sentAt)-1)]
	s.ns.Store(ns)
	s.id.Store(id)
}

// sentTime is when pub id was written; false when it is no longer known.
func (p *publisher) sentTime(id uint64) (int64, bool) {
	if len(p.sentAt) == 0 {
		return 0, false
	}
	s := &p.sentAt[id&uint64(len(p.sentAt)-1)]
	if s.id.Load() != id {
		return 0, false
	}
	ns := s.ns.Load()
	return ns, s.id.Load() == id
}

// maxBatch bounds the frames a publisher that fell behind sends in one
// WebSocket message while it catches up.
const (
	maxBatch      = 64
	maxBatchBytes = 60 << 10
)

// run publishes from start until stop; messages stamped at or after measure
// are measured.
func (p *publisher) run(start, measure, stop time.Time) {
	interval := float64(time.Second) / p.rate
	enc := newPubEncoder(p.room.name, p.conn.r.cfg.Size)
	if p.conn.r.cfg.PayloadText {
		enc.fill = chatText(p.conn.r.cfg.Size - binHeaderLen(p.conn.r.cfg.Size) - payloadBody)
	}
	nextID := uint64(joinID + 1)
	measureNS, stopNS := measure.UnixNano(), stop.UnixNano()
	ws := p.conn.ws
	k := 0 // messages sent so far
	// A batch stays within maxBatchBytes (the server's default message
	// bound is 64 KiB), but always holds at least one frame.
	batchLimit := max(1, min(maxBatch, maxBatchBytes/(p.conn.r.cfg.Size+32+len(p.room.name))))
	for {
		t := time.Now()
		if !t.Before(stop) {
			return
		}
		// Message k is due at start + (k+phase) × interval; floor, not a
		// conversion, which would round the early negatives up to zero.
		due := int(math.Floor(float64(t.Sub(start))/interval-p.phase)) + 1
		if n := min(due-k, batchLimit); n > 0 {
			enc.buf = enc.buf[:0]
			ts := t.UnixNano()
			for range n {
				st := stamp{phase: phaseWarmup, pub: p.id, counter: uint32(nextID), sentNS: ts}
				if ts >= measureNS && ts < stopNS {
					base := p.baseID.Load()
					if base == 0 {
						base = nextID
						p.baseID.Store(base)
					}
					st.phase, st.counter = phaseMeasured, uint32(nextID-base)
				}
				enc.append(nextID, st)
				p.markSent(nextID, ts)
				nextID++
			}
			_ = ws.SetWriteDeadline(t.Add(10 * time.Second))
			if err := ws.WriteMessage(websocket.BinaryMessage, enc.buf); err != nil {
				if !p.conn.r.stopping.Load() {
					p.conn.r.errs.add("write:" + writeErrKey(err))
				}
				p.stopped.Store(true)
				return
			}
			k += n
			p.sent.Add(int64(n))
			if ts >= measureNS {
				p.measured.Add(int64(n))
			}
			if cap(enc.buf) > 1<<20 {
				enc.buf = nil
			}
		}
		next := start.Add(time.Duration((float64(k) + p.phase) * interval))
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
}

// onReply records the server's answer to pub id, read at recvNS: an ok of
// a measured pub is timed from its send into the run's ack latency. Reader
// goroutine only.
func (p *publisher) onReply(id uint64, ok bool, recvNS int64) {
	base := p.baseID.Load()
	if base == 0 || id < base {
		return // a warmup message
	}
	if ok {
		p.accepted.set(uint32(id - base))
		p.acked.Add(1)
		if ns, known := p.sentTime(id); known {
			p.conn.r.ackLat.Record(int(p.id), timeDur(recvNS-ns))
		}
	} else {
		p.rejected.Add(1)
	}
}

func writeErrKey(err error) string {
	k := readErrKey(err, -1)
	if i := strings.IndexByte(k, ':'); i >= 0 {
		k = k[i+1:]
	}
	if k == "" {
		k = "other"
	}
	return k
}
