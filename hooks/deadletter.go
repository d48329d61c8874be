package hooks

import (
	"slices"
	"time"
)

// DeadLetter is an event that could not be delivered, kept for reading and
// replay (GET and POST /v1/hooks/dead-letters).
type DeadLetter struct {
	// ID orders the entries of a node; it is not reused while the node
	// runs.
	ID       uint64 `json:"id"`
	Hook     Name   `json:"hook"`
	Room     string `json:"room"`
	At       int64  `json:"at"` // unix ms when dead-lettered
	Attempts int    `json:"attempts"`
	Error    string `json:"error"`
	Event    Event  `json:"event"`
}

// deadLetters is the bounded store, oldest first. d.mu guards it.
type deadLetters struct {
	max     int
	m       Metrics
	next    uint64
	entries []DeadLetter
}

func (s *deadLetters) add(ev Event, attempts int, why string) {
	s.next++
	s.entries = append(s.entries, DeadLetter{ID: s.next, Hook: ev.Hook(), Room: ev.Room(),
		At: time.Now().UnixMilli(), Attempts: attempts, Error: why, Event: ev})
	s.m.HookDeadLettered(ev.Hook())
	if over := len(s.entries) - s.max; over > 0 {
		s.entries = slices.Delete(s.entries, 0, over)
		for range over {
			s.m.HookDeadLetterDropped()
		}
	}
	s.m.HookDeadLetters(len(s.entries))
}

// DeadLetters returns up to limit dead letters with an ID above after,
// oldest first (limit ≤ 0: all).
func (h *Hooks) DeadLetters(after uint64, limit int) []DeadLetter {
	if h == nil {
		return nil
	}
	d := h.del
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []DeadLetter
	for _, e := range d.dead.entries {
		if e.ID > after {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

// Replay takes the dead letters named by ids (nil: all) out of the store
// and queues them for delivery again, each after its room's queued events.
// It returns how many it queued.
func (h *Hooks) Replay(ids []uint64) int {
	if h == nil {
		return 0
	}
	d := h.del
	d.mu.Lock()
	var evs []Event
	d.dead.entries = slices.DeleteFunc(d.dead.entries, func(e DeadLetter) bool {
		if ids == nil || slices.Contains(ids, e.ID) {
			evs = append(evs, e.Event)
			return true
		}
		return false
	})
	d.dead.m.HookDeadLetters(len(d.dead.entries))
	d.mu.Unlock()
	for _, ev := range evs {
		d.add(ev, false)
	}
	return len(evs)
}

// Discard removes the dead letters named by ids (nil: all) and returns how
// many it removed.
func (h *Hooks) Discard(ids []uint64) int {
	if h == nil {
		return 0
	}
	d := h.del
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.dead.entries)
	d.dead.entries = slices.DeleteFunc(d.dead.entries, func(e DeadLetter) bool {
		return ids == nil || slices.Contains(ids, e.ID)
	})
	d.dead.m.HookDeadLetters(len(d.dead.entries))
	return n - len(d.dead.entries)
}
