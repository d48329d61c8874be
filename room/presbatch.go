package room

import (
	"time"

	"github.com/roomd/roomd/protocol"
)

// Presence deltas are coalesced per room: every change of an entry is noted
// with whether the entry was shown before the window began, and when the
// window ends (Config.PresenceWindow) the room sends one pres event with the
// net change of each entry: join (absent then, present now), leave (present
// then, absent now) or upd (present at both ends). An entry that joined and
// left within one window is not mentioned at all, unless a joined snapshot
// showed it meanwhile: then it leaves. The three lists name distinct
// connections, so a client may apply them in any order; join and upd
// replace an entry, leave removes one, and a frame that restates what a
// subscriber's joined snapshot already showed changes nothing.
//
// A busy room's windows grow: a window that opens less than one window
// after the last one ended is twice as long (up to
// Config.PresenceWindowMax), and a room that stays quiet for a window goes
// back to Config.PresenceWindow. A join storm thus costs each member a
// handful of frames, not one per join, while a single change in a quiet
// room still goes out within the short window. A window whose event would
// carry more than presenceBurst entries to all members together ends at
// once, so a big room's storm goes out in bounded bursts, not in one that
// queues ahead of the room's messages.
//
// Above Namespace.PresenceLarge entries, the room is in large-room mode:
// the window's event carries the entry count instead of the changes, and a
// joined snapshot holds a sample. When the count falls back to the
// threshold, one event carries the whole list.

// DefaultPresenceWindow is the window presence deltas are coalesced over.
const DefaultPresenceWindow = 20 * time.Millisecond

// DefaultPresenceWindowMax is how long a busy room's window may grow.
const DefaultPresenceWindowMax = time.Second

// presenceBurst bounds the entries one window's event carries to all
// members together (changes × members): about a megabyte of writes.
const presenceBurst = 32 << 10

// MaxPresenceWindow bounds Config.PresenceWindow and PresenceWindowMax.
const MaxPresenceWindow = 5 * time.Second

// PresenceSample is the most entries a joined snapshot holds in large-room
// mode.
const PresenceSample = 100

// presBatch is the presence changes of a room's current window. Guarded by
// room.mu.
type presBatch struct {
	was   map[string]bool // conn -> its entry was shown when the window began
	order []string        // the conns of was, first change first
	timer *time.Timer     // ends the window; nil when none is open
	gen   uint64          // bumped when the timer is stopped; a stale one sees it changed
	shown map[string]bool // entries of the window a joined snapshot showed while they were new
	cur   time.Duration   // the length of the last window opened
	ended time.Time       // when the last window ended
	large bool            // the last event sent was in large-room mode
	count int             // the count that event announced
}

// notePres records that conn's entry is about to change (join, leave,
// update). Call it before the change. r.mu is held on entry.
func (r *room) notePres(conn string) {
	_, shown := r.members[conn]
	r.notePresAs(conn, shown)
}

// notePresAs records conn as changed in this window, shown or not when it
// began (the first note of the window wins). r.mu is held on entry.
func (r *room) notePresAs(conn string, shown bool) {
	if r.ns.NoPresence {
		return
	}
	b := &r.pres
	if b.was == nil {
		b.was = make(map[string]bool)
	}
	if _, ok := b.was[conn]; !ok {
		b.was[conn] = shown
		b.order = append(b.order, conn)
	}
}

// presSoon makes sure the noted changes go out: at the end of the window,
// or at once when windows are off. r.mu is held on entry.
func (r *room) presSoon() {
	b := &r.pres
	if len(b.order) == 0 {
		return
	}
	if b.timer != nil {
		if len(b.order)*len(r.list) >= presenceBurst && !r.large() { // a count is small
			b.ended = time.Now() // the next window follows on, longer
			r.flushPres()
		}
		return
	}
	base := r.m.cfg.PresenceWindow
	if base < 0 {
		r.flushPres()
		return
	}
	now := time.Now()
	if b.cur == 0 || now.Sub(b.ended) > b.cur {
		b.cur = base // quiet for a window: back to the short one
	} else {
		b.cur = min(2*b.cur, max(base, r.m.cfg.PresenceWindowMax))
	}
	gen := b.gen
	b.timer = time.AfterFunc(b.cur, func() { r.presWindowEnded(gen) })
}

func (r *room) presWindowEnded(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead || r.pres.gen != gen {
		return
	}
	r.pres.timer = nil
	r.pres.ended = time.Now()
	r.flushPres()
}

// stopTimer stops the window's timer; one already firing sees gen changed.
func (b *presBatch) stopTimer() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.gen++
}

// stopPres closes the window without sending it. r.mu is held on entry.
func (r *room) stopPres() {
	r.pres.stopTimer()
	r.pres.was, r.pres.order, r.pres.shown = nil, nil, nil
}

// flushPres sends the window's net changes to every subscriber and opens
// the next window. r.mu is held on entry.
func (r *room) flushPres() {
	b := &r.pres
	b.stopTimer()
	if len(b.order) == 0 {
		return
	}
	was, order, shown := b.was, b.order, b.shown
	b.was, b.order, b.shown = nil, nil, nil
	if ev := r.presBatchEvent(was, order, shown); ev != nil {
		r.deliver(ev, nil)
	}
}

// presBatchEvent builds the event of a window's changes; nil when there is
// nothing to say. r.mu is held on entry.
func (r *room) presBatchEvent(was map[string]bool, order []string, shown map[string]bool) *Event {
	b := &r.pres
	if r.large() {
		n := len(r.members)
		if b.large && b.count == n {
			return nil
		}
		b.large, b.count = true, n
		return r.presEvent(presChange{count: n})
	}
	if b.large { // back to the threshold: the whole list, once
		b.large, b.count = false, 0
		all := r.presenceSnapshot()
		sortByConn(all)
		return r.presEvent(presChange{all: all})
	}
	var ch presChange
	for _, c := range order {
		mem := r.members[c]
		switch {
		case mem == nil && (was[c] || shown[c]):
			ch.leave = append(ch.leave, c)
		case mem != nil && was[c]:
			ch.upd = append(ch.upd, mem.m)
		case mem != nil:
			ch.join = append(ch.join, mem.m)
		}
	}
	if len(ch.join)+len(ch.leave)+len(ch.upd) == 0 {
		return nil
	}
	return r.presEvent(ch)
}

// snapshotTaken records, for a joined snapshot taken now by conn, the
// entries new in this window that it shows: if they leave within the
// window, its event must take them back. r.mu is held on entry.
func (r *room) snapshotTaken(conn string) {
	b := &r.pres
	if r.large() {
		return // a sample: the window's event is a count, or the whole list
	}
	for _, c := range b.order {
		if c != conn && !b.was[c] && r.members[c] != nil {
			if b.shown == nil {
				b.shown = make(map[string]bool)
			}
			b.shown[c] = true
		}
	}
}

// large reports whether the room is in large-room mode. r.mu is held on
// entry.
func (r *room) large() bool {
	return r.ns.PresenceLarge > 0 && len(r.members) > r.ns.PresenceLarge
}

// presChange is what one pres event says.
type presChange struct {
	join  []protocol.Member
	leave []string
	upd   []protocol.Member
	count int               // large-room mode: the entry count
	all   []protocol.Member // leaving large-room mode: every entry
}

// Mentions reports whether a pres event names conn's entry (in Join, Leave
// or Upd). A member is not told of its own changes: its subscriber strips
// them with Without.
func (e *Event) Mentions(conn string) bool {
	if e.Kind != KindPres || conn == "" {
		return false
	}
	for i := range e.Join {
		if e.Join[i].C == conn {
			return true
		}
	}
	for i := range e.Upd {
		if e.Upd[i].C == conn {
			return true
		}
	}
	for _, c := range e.Leave {
		if c == conn {
			return true
		}
	}
	return false
}

// Without returns a copy of a pres event without conn's entry, its frame
// encoded anew; nil when nothing else is left to say.
func (e *Event) Without(conn string) *Event {
	ch := presChange{
		join:  dropMember(e.Join, conn),
		leave: dropConn(e.Leave, conn),
		upd:   dropMember(e.Upd, conn),
	}
	if len(ch.join)+len(ch.leave)+len(ch.upd) == 0 {
		return nil
	}
	return ch.event(e.Room, e.Epoch)
}

// event builds the pres event that says ch, its frame encoded once.
func (ch presChange) event(room, epoch string) *Event {
	ev := &Event{Kind: KindPres, Room: room, Epoch: epoch, Join: ch.join, Leave: ch.leave, Upd: ch.upd, Count: ch.count, All: ch.all}
	ev.Frame = protocol.MustEncode(&protocol.Pres{T: protocol.TypePres, R: room, Join: ch.join, Leave: ch.leave, Upd: ch.upd, Cnt: ch.count, All: ch.all})
	return ev
}

func dropMember(ms []protocol.Member, conn string) []protocol.Member {
	var out []protocol.Member
	for _, m := range ms {
		if m.C != conn {
			out = append(out, m)
		}
	}
	return out
}

func dropConn(cs []string, conn string) []string {
	var out []string
	for _, c := range cs {
		if c != conn {
			out = append(out, c)
		}
	}
	return out
}
