package bench

import (
	"context"
	"sync"
	"time"
)

// The joinstorm scenario's presence check: every member keeps the view of
// its room's presence a client would (its joined snapshot, then each pres
// frame: join and upd replace an entry, leave removes one, all replaces the
// list, cnt is the count in large-room mode), and once the run is over each
// view is compared with who is in the room: every bench connection of it
// still open.

// presView is one member's view of its room's presence. Its reader updates
// it; the check reads it under mu.
type presView struct {
	mu      sync.Mutex
	members map[string]struct{}
	large   bool // the room said it is in large-room mode: count only
	count   int
	frames  int64 // pres frames received
	entries int64 // entries they named
}

func newPresView() *presView { return &presView{members: map[string]struct{}{}} }

// onJoined applies a joined snapshot.
func (v *presView) onJoined(f *frameView) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.members)
	v.large, v.count = f.cnt > 0, int(f.cnt)
	return eachMember(f.pres, func(c []byte) { v.members[string(c)] = struct{}{} })
}

// onPres applies a pres frame.
func (v *presView) onPres(f *frameView) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.frames++
	if f.cnt > 0 {
		v.large, v.count = true, int(f.cnt)
	}
	if f.all != nil {
		v.large = false
		clear(v.members)
		if err := eachMember(f.all, func(c []byte) { v.members[string(c)] = struct{}{}; v.entries++ }); err != nil {
			return err
		}
	}
	add := func(c []byte) { v.members[string(c)] = struct{}{}; v.entries++ }
	if err := eachMember(f.join, add); err != nil {
		return err
	}
	if err := eachMember(f.upd, add); err != nil {
		return err
	}
	return eachStr(f.leave, func(c []byte) { delete(v.members, string(c)); v.entries++ })
}

// matches reports whether the view, with self added, is want (in large-room
// mode: whether the count is len(want)).
func (v *presView) matches(self string, want map[string]struct{}) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.large {
		return v.count == len(want)
	}
	_, in := v.members[self]
	n := len(v.members)
	if !in {
		n++
	}
	if n != len(want) {
		return false
	}
	for c := range v.members {
		if _, ok := want[c]; !ok {
			return false
		}
	}
	_, ok := want[self]
	return ok
}

// eachMember calls fn with the c of every member in a msgpack array of
// member maps (nil: none).
func eachMember(b []byte, fn func(c []byte)) error {
	return eachElem(b, func(off int) (int, error) {
		keys, off, err := mapLen(b, off)
		for ; err == nil && keys > 0; keys-- {
			var key []byte
			if key, off, err = strBytes(b, off); err != nil {
				break
			}
			if len(key) != 1 || key[0] != 'c' {
				off, err = skip(b, off)
				continue
			}
			var c []byte
			if c, off, err = strBytes(b, off); err == nil {
				fn(c)
			}
		}
		return off, err
	})
}

// eachStr calls fn with every string of a msgpack array (nil: none).
func eachStr(b []byte, fn func(s []byte)) error {
	return eachElem(b, func(off int) (int, error) {
		s, end, err := strBytes(b, off)
		if err == nil {
			fn(s)
		}
		return end, err
	})
}

// eachElem walks the msgpack array b (nil: none): elem reads the element at
// off and returns the offset after it.
func eachElem(b []byte, elem func(off int) (int, error)) error {
	if len(b) == 0 || b[0] == 0xc0 {
		return nil
	}
	n, off, err := arrayLen(b, 0)
	for ; err == nil && n > 0; n-- {
		off, err = elem(off)
	}
	return err
}

func arrayLen(b []byte, off int) (int, int, error) { return containerLen(b, off, 0x90, 0xdc) }

// PresenceStats is the joinstorm scenario's presence check.
type PresenceStats struct {
	// Members checked (open connections), and those whose view equalled
	// the room's presence within Settle.
	Members  int `json:"members"`
	Matching int `json:"matching"`
	// SettledMS is how long after the run's end the last view matched (or
	// the wait, when some never did).
	SettledMS float64 `json:"settled_ms"`
	// Frames and Entries: pres frames received by all members, and the
	// entries they named, over the whole run (storm included).
	Frames  int64 `json:"pres_frames"`
	Entries int64 `json:"pres_entries"`
}

// presenceSettle bounds the wait for every view to match: presence
// windows are at most a second.
const presenceSettle = 5 * time.Second

// checkPresence compares every open member's view with the room's
// presence, waiting up to presenceSettle for the last windows to arrive.
func (r *runner) checkPresence(ctx context.Context) *PresenceStats {
	st := &PresenceStats{}
	want := map[*roomState]map[string]struct{}{}
	var members []*wsConn
	for _, c := range r.conns {
		if !c.joined || c.dead.Load() || c.connID == "" {
			continue
		}
		w := want[c.room]
		if w == nil {
			w = map[string]struct{}{}
			want[c.room] = w
		}
		w[c.connID] = struct{}{}
		if c.pv != nil {
			members = append(members, c)
		}
	}
	st.Members = len(members)
	t0 := time.Now()
	for {
		st.Matching = 0
		for _, c := range members {
			if c.pv.matches(c.connID, want[c.room]) {
				st.Matching++
			}
		}
		if st.Matching == st.Members || time.Since(t0) > presenceSettle || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.SettledMS = float64(time.Since(t0)) / float64(time.Millisecond)
	for _, c := range members {
		c.pv.mu.Lock()
		st.Frames += c.pv.frames
		st.Entries += c.pv.entries
		c.pv.mu.Unlock()
	}
	return st
}
