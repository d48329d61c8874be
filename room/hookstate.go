package room

// The replicated record of the hooks that report (published, occupied,
// vacated; package hooks). The room's owner delivers them; what it
// delivered, and each occupancy transition, are commands of the room's log,
// applied on every replica, so that a new owner knows what the old one did
// and did not deliver:
//   - CmdTransition records that the room became occupied (its first
//     presence entry) or vacated (its last entry gone): transition N of the
//     epoch, odd occupied, even vacated. It is proposed by the owner when
//     the room's members disagree with the record, and applies only as
//     N = the record's + 1, so two proposals of one transition make one.
//   - CmdHookMark records what the backend acknowledged: the published
//     cursor (Key "p": every seq up to Seq) or the transitions (Key "t").
//     Marks only move forward.

// HookState is a room's replicated hook record.
type HookState struct {
	// Published is the highest seq whose published event was acknowledged.
	Published uint64 `msgpack:"p,omitempty"`
	// Trans counts the occupancy transitions of the epoch; TransAt is when
	// the last one was (unix ms).
	Trans   uint64 `msgpack:"n,omitempty"`
	TransAt int64  `msgpack:"t,omitempty"`
	// TransDone is the highest transition acknowledged.
	TransDone uint64 `msgpack:"d,omitempty"`
}

// Occupied reports whether the record says the room is occupied.
func (h HookState) Occupied() bool { return h.Trans%2 == 1 }

// unsettled reports whether the room must not be dropped yet: the record
// says occupied (an empty room's vacated is still to be recorded), or a
// transition is still to be acknowledged.
func (h HookState) unsettled() bool { return h.Occupied() || h.TransDone < h.Trans }

// Mark keys of CmdHookMark.
const (
	MarkPublished = "p"
	MarkTrans     = "t"
)

// NewHookMark returns the command that records an acknowledgement.
func NewHookMark(room, epoch, key string, upTo uint64) *Command {
	return &Command{Op: CmdHookMark, Room: room, Epoch: epoch, Key: key, Seq: upTo}
}

// WatchOccupancy makes the Manager call f with a room's name whenever its
// presence entries may have gone from none to some or from some to none,
// and when a presence recovery ends (replica.go). f is called with the
// room's lock held: it must be cheap and must not call the Manager. It must
// be called before the Manager is used.
func (m *Manager) WatchOccupancy(f func(room string)) {
	m.cfg.onOccupancy = f
}

// occupancyChanged tells the watcher when the room's entries went from none
// to one or from one to none (or a drop found the record unsettled). r.mu
// is held on entry.
func (r *room) occupancyChanged() {
	if f := r.m.cfg.onOccupancy; f != nil && len(r.members) <= 1 {
		f(r.name)
	}
}

// HookState returns a room's epoch and hook record; ok is false when the
// room does not exist.
func (m *Manager) HookState(name string) (epoch string, st HookState, ok bool) {
	r := m.lockLive(name)
	if r == nil {
		return "", HookState{}, false
	}
	defer r.mu.Unlock()
	return r.epoch, r.hooks, true
}

// PrepareTransition returns the command that records the room's occupancy
// when its members disagree with its record, or nil: none needed, the room
// is gone, or its presence is being recovered after a change of owner (its
// end calls the watcher again). A room's drop waits for its record to
// settle (applyDrop).
func (m *Manager) PrepareTransition(name string) *Command {
	r := m.lockLive(name)
	if r == nil {
		return nil
	}
	defer r.mu.Unlock()
	if r.recovery != nil || (len(r.members) > 0) == r.hooks.Occupied() {
		return nil
	}
	return &Command{Op: CmdTransition, Room: name, Epoch: r.epoch, Seq: r.hooks.Trans + 1, At: m.now().UnixMilli()}
}

// applyHook applies a CmdTransition (returning its N when it applied, 0
// when the record had it already) or a CmdHookMark. r.mu is held on entry.
func (r *room) applyHook(c *Command) uint64 {
	switch c.Op {
	case CmdTransition:
		if c.Seq != r.hooks.Trans+1 {
			return 0
		}
		r.hooks.Trans, r.hooks.TransAt = c.Seq, c.At
		return c.Seq
	case CmdHookMark:
		switch c.Key {
		case MarkPublished:
			r.hooks.Published = max(r.hooks.Published, min(c.Seq, r.seq))
		case MarkTrans:
			r.hooks.TransDone = max(r.hooks.TransDone, min(c.Seq, r.hooks.Trans))
		}
	}
	return 0
}
