package room

import "time"

// history is a ring of a room's most recent durable events, bounded by count
// (max) and age (ttl). The events it holds have consecutive seqs, oldest
// first. Its buffer grows on demand up to max and is let go when it empties,
// so a quiet room holds nothing.
type history struct {
	buf  []*Event
	head int // index of the oldest event
	n    int
	max  int
	ttl  time.Duration
}

func (h *history) at(i int) *Event { return h.buf[(h.head+i)%len(h.buf)] }

// push appends ev, forgetting the oldest event when full.
func (h *history) push(ev *Event) {
	if h.max <= 0 {
		return
	}
	if h.n == len(h.buf) {
		if len(h.buf) == h.max {
			h.buf[h.head] = ev
			h.head = (h.head + 1) % len(h.buf)
			return
		}
		grown := make([]*Event, min(h.max, max(8, 2*len(h.buf))))
		for i := 0; i < h.n; i++ {
			grown[i] = h.at(i)
		}
		h.buf, h.head = grown, 0
	}
	h.buf[(h.head+h.n)%len(h.buf)] = ev
	h.n++
}

// prune forgets events older than ttl.
func (h *history) prune(now time.Time) {
	cut := now.Add(-h.ttl).UnixMilli()
	for h.n > 0 && h.at(0).TS < cut {
		h.buf[h.head] = nil
		h.head = (h.head + 1) % len(h.buf)
		h.n--
	}
	if h.n == 0 {
		h.buf, h.head = nil, 0
	}
}

// after returns every held event with seq > since, when history can prove
// continuity from since to cur (the room's seq): since == cur, or history
// still holds since+1. ok is false otherwise (since ahead of cur included).
func (h *history) after(since, cur uint64) (log []*Event, ok bool) {
	if since > cur {
		return nil, false
	}
	if since == cur {
		return []*Event{}, true
	}
	if h.n == 0 || h.at(0).Seq > since+1 {
		return nil, false
	}
	return h.from(since, 0), true
}

// from returns the held events with seq > since, in order, at most limit of
// them (0 = all).
func (h *history) from(since uint64, limit int) []*Event {
	if h.n == 0 {
		return []*Event{}
	}
	start := 0
	if first := h.at(0).Seq; since >= first {
		start = int(min(since-first+1, uint64(h.n)))
	}
	end := h.n
	if limit > 0 && end-start > limit {
		end = start + limit
	}
	out := make([]*Event, 0, end-start)
	for i := start; i < end; i++ {
		out = append(out, h.at(i))
	}
	return out
}

// lastMsgs returns the last k KindMsg events held, in order.
func (h *history) lastMsgs(k int) []*Event {
	if k <= 0 {
		return []*Event{}
	}
	i := h.n - 1
	cnt := 0
	for ; i >= 0 && cnt < k; i-- {
		if h.at(i).Kind == KindMsg {
			cnt++
		}
	}
	out := make([]*Event, 0, cnt)
	for i++; i < h.n; i++ {
		if ev := h.at(i); ev.Kind == KindMsg {
			out = append(out, ev)
		}
	}
	return out
}

// History returns the room's epoch and its held events with seq > since, the
// oldest first, at most limit of them (0 = all held); ok is false when the
// room does not exist. Events older than what history holds are gone: when
// the first event returned is above since+1, the caller has a gap to report.
func (m *Manager) History(room string, since uint64, limit int) (epoch string, events []*Event, ok bool) {
	r := m.lockLive(room)
	if r == nil {
		return "", nil, false
	}
	defer r.mu.Unlock()
	r.hist.prune(m.now())
	return r.epoch, r.hist.from(since, limit), true
}
