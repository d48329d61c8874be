package room

import "time"

// dedupe remembers a room's idempotency keys and the seq each one got, for
// window, at most max of them: the oldest are forgotten first. Keys live in a
// FIFO in the order they were seen (which is time order), so expiry and
// eviction both pop its front. Everything is allocated on demand and let go
// when it empties. It lives and dies with its room (and so with its epoch).
type dedupe struct {
	seen   map[string]uint64
	order  []dedupeRec
	head   int // order[head:] are live
	window time.Duration
	max    int
}

type dedupeRec struct {
	key string
	seq uint64
	at  time.Time
}

// lookup returns the seq a key got if it was seen within the window.
func (d *dedupe) lookup(key string, now time.Time) (uint64, bool) {
	d.expire(now)
	seq, ok := d.seen[key]
	return seq, ok
}

// peek is lookup without expiring anything: what a node that only checks a
// write (and does not apply it) may do.
func (d *dedupe) peek(key string, now time.Time) (uint64, bool) {
	seq, ok := d.seen[key]
	if !ok {
		return 0, false
	}
	for i := len(d.order) - 1; i >= d.head; i-- {
		if rec := d.order[i]; rec.key == key && rec.seq == seq {
			return seq, rec.at.After(now.Add(-d.window))
		}
	}
	return 0, false
}

// add records that key got seq. The caller has checked that key is not held.
func (d *dedupe) add(key string, seq uint64, now time.Time) {
	if d.max <= 0 {
		return
	}
	d.expire(now)
	for len(d.seen) >= d.max && d.head < len(d.order) {
		d.pop()
	}
	if d.seen == nil {
		d.seen = make(map[string]uint64)
	}
	d.seen[key] = seq
	d.order = append(d.order, dedupeRec{key: key, seq: seq, at: now})
}

func (d *dedupe) expire(now time.Time) {
	cut := now.Add(-d.window)
	for d.head < len(d.order) && !d.order[d.head].at.After(cut) {
		d.pop()
	}
}

// pop forgets the oldest key.
func (d *dedupe) pop() {
	rec := d.order[d.head]
	d.order[d.head] = dedupeRec{}
	d.head++
	if seq, ok := d.seen[rec.key]; ok && seq == rec.seq {
		delete(d.seen, rec.key)
	}
	switch {
	case d.head == len(d.order):
		d.order, d.head, d.seen = nil, 0, nil
	case d.head >= 64 && d.head*2 >= len(d.order):
		n := copy(d.order, d.order[d.head:])
		clear(d.order[n:])
		d.order, d.head = d.order[:n], 0
	}
}
