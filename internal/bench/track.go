package bench

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// bitset is a growable set of small non-negative integers.
type bitset []uint64

func (b bitset) has(i uint32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(i&63)) != 0
}

func (b *bitset) set(i uint32) {
	w := int(i >> 6)
	if w >= len(*b) {
		n := max(2*len(*b), w+1, 4)
		nb := make(bitset, n)
		copy(nb, *b)
		*b = nb
	}
	(*b)[w] |= 1 << (i & 63)
}

func (b bitset) count() int64 {
	var n int
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// andNotCount counts the members of b missing from o.
func (b bitset) andNotCount(o bitset) int64 {
	var n int
	for i, w := range b {
		if i < len(o) {
			w &^= o[i]
		}
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// roomState is one room of the run.
type roomState struct {
	idx  int
	name string
	pubs []*publisher // local publisher index = position
	// trackers receive every message of the room and are checked for it.
	trackers []*tracker
}

// tracker checks the messages one receiver (a subscriber's WebSocket or an
// SSE observer) gets from its room. Only its reader goroutine touches it,
// except the atomics.
type tracker struct {
	room    *roomState
	shard   int
	lastSeq uint64
	pubs    []bitset // measured counters received, per room publisher
	high    []int64  // highest measured counter received, per room publisher

	uniq atomic.Int64 // distinct measured messages received
	all  atomic.Int64 // msg frames received, any phase
	dead atomic.Bool  // its connection ended before the run did
	live atomic.Bool  // its connection opened

	dups, ooo, seqRegress, warm, foreign int64
}

func newTracker(rs *roomState, shard int) *tracker {
	t := &tracker{room: rs, shard: shard}
	rs.trackers = append(rs.trackers, t)
	return t
}

// init sizes the per-publisher state, once every publisher is known.
func (t *tracker) init() {
	n := len(t.room.pubs)
	t.pubs = make([]bitset, n)
	t.high = make([]int64, n)
	for i := range t.high {
		t.high[i] = -1
	}
}

// onMsg accounts for one received message of seq s and payload d.
func (t *tracker) onMsg(r *runner, seq uint64, st stamp, ok bool, recvNS int64) {
	t.all.Add(1)
	if seq != 0 {
		if seq <= t.lastSeq {
			t.seqRegress++
		} else {
			t.lastSeq = seq
		}
	}
	if !ok {
		t.foreign++
		return
	}
	if st.phase != phaseMeasured {
		t.warm++
		return
	}
	p := r.publisher(st.pub)
	if p == nil || p.room != t.room {
		t.foreign++
		return
	}
	set := &t.pubs[p.local]
	if set.has(st.counter) {
		t.dups++
		return
	}
	set.set(st.counter)
	if int64(st.counter) < t.high[p.local] {
		t.ooo++
	} else {
		t.high[p.local] = int64(st.counter)
	}
	t.uniq.Add(1)
	r.lat.Record(t.shard, timeDur(recvNS-st.sentNS))
}

const (
	phaseWarmup   = 0
	phaseMeasured = 1
)

// errCounter counts errors by a short key such as "err:rate_limited".
type errCounter struct {
	mu sync.Mutex
	m  map[string]int64
	n  atomic.Int64
}

func (e *errCounter) add(key string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[key]++
	e.mu.Unlock()
	e.n.Add(1)
}

func (e *errCounter) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}
