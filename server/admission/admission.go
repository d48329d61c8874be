package admission

import (
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets a Controller up.
type Config struct {
	// Target is the delay above which publishes are refused. Zero means
	// 50 ms; a negative Target turns admission off (Admit takes every
	// publish).
	Target time.Duration
	// Interval is how long delays are measured before the limits move, and
	// the span of the counts that shares are computed from. Zero means
	// 100 ms.
	Interval time.Duration
	// MinRate is the lowest limit of a room or of the node, in publishes per
	// second; a room that asks for no more than twice that per Interval is
	// never refused (its floor). Zero means 10.
	MinRate float64
	// Pace is how many parts of an interval a room over its share gets
	// its share in, one at the start of each (and its publishers theirs):
	// its admitted publishes then come through the interval rather than
	// in one burst at its start, which waits in its publishers' queues
	// (a connection's operations in a room run one after the other) and
	// comes back as queue delay. A quiet room gets its share at once.
	// Zero means 4; 1 grants every share whole at the interval's start.
	Pace int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Report, when set, is called at the end of each interval that had
	// traffic or a limit, with the controller's lock held: it must not call
	// back into the controller.
	Report func(State)
}

// Defaults of Config.
const (
	DefaultTarget   = 50 * time.Millisecond
	DefaultInterval = 100 * time.Millisecond
	DefaultMinRate  = 10
	DefaultPace     = 4
)

// The limits move by the ratio of target to delay, within these bounds
// per interval when the delay is above the target, and up by at most
// raiseStep of the limit per interval below it.
const (
	cutMin    = 0.5
	cutMax    = 0.95
	raiseStep = 0.10
	// queueQuantile and writeQuantile are the delays of an interval that
	// are held to the target: the 90th percentile of each. A room's queue
	// is the node's own. So are the writes the server feeds it: only
	// those made as soon as the node could, never one that waited for its
	// client's socket (a slow reader, cut as a slow consumer, must not
	// limit the node). Readers see the tail of the write delay, so the
	// tail is what is held.
	queueQuantile = 0.9
	writeQuantile = 0.9
	// liftAfter is how long every delay must stay below the target, with
	// nothing refused, before a limit is lifted.
	liftAfter = time.Second
	// rateGain smooths a room's rate of attempts over about five
	// intervals; quietMax is the most, in Config.MinRate, that a quiet
	// room asks for on that average (room for the jitter of a steady
	// publisher at MinRate).
	rateGain = 0.2
	quietMax = 1.5
	// queueShare is the part of the target a room's queue delay is held
	// to: a reader sees a publish's wait before its operation and then
	// its fan-out's write delay, one after the other. (Measured: with the
	// whole target for each, readers' p99 was 100-180 ms in one room of
	// 1,000 at 3× its rate; with two thirds, 69-78 ms while the node
	// collected ten times a second, then 86-122 ms once it admitted more;
	// with half, 76-83 ms; with shares paced through the interval (Pace),
	// half gave 90-95 ms and two fifths 69-71 ms, with more than the
	// room's sustainable rate still admitted.)
	queueShare = 0.4
	// queueMinAdmitted is the fewest publishes a room must have admitted in
	// an interval for its queue delay to put a limit on it: a room
	// publishing less than that cannot queue its own operations, and one
	// slow operation (a pause of the process, a busy core) must not limit
	// a chat of three. The node's write delay still limits every room.
	queueMinAdmitted = 10
)

// Reason is Admit's verdict.
type Reason uint8

const (
	// Admitted: take the publish.
	Admitted Reason = iota
	// RefusedRoom: the room is over its own limit, or over its share of
	// the node's.
	RefusedRoom
	// RefusedPublisher: the publisher is over its share of its room's.
	RefusedPublisher
)

// String is the reason's label in metrics: "admitted", "room",
// "publisher".
func (r Reason) String() string {
	switch r {
	case RefusedRoom:
		return "room"
	case RefusedPublisher:
		return "publisher"
	default:
		return "admitted"
	}
}

// State is what the controller measured and decided in its last interval.
type State struct {
	// NodeLimit is the node's limit in publishes per second; 0 when the
	// node is not limited.
	NodeLimit float64
	// WriteDelay is the median write delay of the interval (0: none).
	WriteDelay time.Duration
	// QueueDelay is the largest, over the rooms, of a room's 90th
	// percentile queue delay of the interval (0: none).
	QueueDelay time.Duration
	// LimitedRooms counts the rooms with a limit of their own.
	LimitedRooms int
	// Rooms counts the rooms the controller follows.
	Rooms int
	// Refused counts the publishes refused in the interval.
	Refused int
	// Admitted counts the publishes admitted in the interval.
	Admitted int
	// RoomLimit is the lowest limit of a limited room (0: none).
	RoomLimit float64
}

// Controller is the admission state of one node. Safe for concurrent use.
//
// Admit runs on every reader of the node at once: it holds mu for reading
// and only its room's lock, and counts the node's totals with atomic adds,
// so that publishers of different rooms never wait for each other (one
// mutex for all of them made a convoy of the readers under a flood, and
// the publishes waited in their sockets). The end of an interval takes mu
// for writing.
//
// Lock order: mu, then a roomState's mu; both are leaves otherwise.
type Controller struct {
	cfg     Config
	off     bool
	perIntv float64 // Interval in seconds

	writes   delayHist    // write delays of this interval
	next     atomic.Int64 // the end of the current interval, in Unix nanoseconds
	admitted atomic.Int64 // this interval
	refused  atomic.Int64 // this interval

	mu       sync.RWMutex
	start    time.Time // of the current interval
	node     limit
	rooms    map[string]*roomState
	newShare float64 // share of a room not yet seen (per interval; +Inf: none)
}

// limit is an adaptive publish limit: off until a delay passes the target.
type limit struct {
	on   bool
	rate float64 // publishes per second, when on
	good int     // intervals in a row below the target
}

// roomState is one room's counts and limit. Admit changes the counts and
// the credit with c.mu held for reading and mu held; the end of an interval
// reads and resets everything with c.mu held for writing.
type roomState struct {
	queue delayHist // queue delays of this interval

	mu        sync.Mutex
	lim       limit
	attempts  int
	admitted  int
	refused   int
	idle      int     // intervals in a row without a publish
	rate      float64 // publishes asked per interval, smoothed (quiet)
	share     float64 // publishes per interval the room may admit (+Inf: no bound)
	credit    float64 // publishes it may still admit: share per interval, unused carried up to share+1+phase
	paced     bool    // asked for more than its share: the share comes in Config.Pace parts through the interval
	held      float64 // the part of this interval's share not yet added to credit
	granted   int     // parts of this interval's share added so far
	phase     float64 // the room's point in the credit cycle, in [0, 1), fixed by its name
	connShare float64 // each publisher's share of them (+Inf: no bound)
	conns     map[string]*connCount
}

type connCount struct{ attempts, admitted int }

// New returns a controller with cfg's zero values filled.
func New(cfg Config) *Controller {
	if cfg.Target == 0 {
		cfg.Target = DefaultTarget
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinRate <= 0 {
		cfg.MinRate = DefaultMinRate
	}
	if cfg.Pace <= 0 {
		cfg.Pace = DefaultPace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Controller{cfg: cfg, off: cfg.Target < 0, perIntv: cfg.Interval.Seconds(), newShare: math.Inf(1)}
	now := cfg.Now()
	c.start = now
	c.next.Store(now.Add(cfg.Interval).UnixNano())
	c.rooms = make(map[string]*roomState)
	return c
}

// Target is the delay target in force (negative: admission off).
func (c *Controller) Target() time.Duration { return c.cfg.Target }

// Ticket goes with an admitted publish, for the measure of its queue delay.
// The zero Ticket measures nothing.
type Ticket struct{ rs *roomState }

// ObserveQueue records the time the publish waited between its read and
// the start of its operation.
func (t Ticket) ObserveQueue(d time.Duration) {
	if t.rs != nil {
		t.rs.queue.observe(d)
	}
}

// ObserveWrite records a write delay: from an event's creation to its
// write on a socket. Two atomic adds.
func (c *Controller) ObserveWrite(d time.Duration) {
	if c != nil && !c.off {
		c.writes.observe(d)
	}
}

// Admit decides on one publish to room by conn (a connection id; "" for
// the HTTP API, which counts as one publisher).
func (c *Controller) Admit(room, conn string) (Ticket, Reason) {
	if c == nil || c.off {
		return Ticket{}, Admitted
	}
	now := c.cfg.Now()
	if now.UnixNano() >= c.next.Load() {
		c.roll(now)
	}
	c.mu.RLock()
	rs := c.rooms[room]
	for rs == nil {
		c.mu.RUnlock()
		c.mu.Lock()
		if rs = c.rooms[room]; rs == nil {
			rs = &roomState{share: c.newShare, connShare: c.newShare, phase: phase(room)}
			if !math.IsInf(c.newShare, 1) {
				rs.credit = c.newShare
			}
			c.rooms[room] = rs
		}
		c.mu.Unlock()
		c.mu.RLock()
		rs = c.rooms[room] // an interval that ended meanwhile may have dropped it
	}
	defer c.mu.RUnlock()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.attempts++
	part := c.cfg.Pace // the parts of the interval begun by now
	if rs.paced {
		part = min(int(float64(now.Sub(c.start))*float64(c.cfg.Pace)/float64(c.cfg.Interval))+1, c.cfg.Pace)
		rs.paceLocked(part, c.cfg.Pace)
	}
	var cc *connCount
	if !math.IsInf(rs.share, 1) {
		if rs.conns == nil {
			rs.conns = make(map[string]*connCount)
		}
		if cc = rs.conns[conn]; cc == nil {
			cc = &connCount{}
			rs.conns[conn] = cc
		}
		cc.attempts++
	}
	switch {
	case !math.IsInf(rs.share, 1) && rs.credit < 1:
		rs.refused++
		c.refused.Add(1)
		return Ticket{}, RefusedRoom
	case cc != nil && rs.connShare < rs.share && float64(cc.admitted) >= max(1, math.Floor(rs.connShare*float64(part)/float64(c.cfg.Pace))):
		// A publisher whose share is the whole room's (a lone one) has
		// only the room's credit to keep: whole publishes per interval
		// would hold it below a share of 1.7 to 1 each interval.
		rs.refused++
		c.refused.Add(1)
		return Ticket{}, RefusedPublisher
	}
	rs.admitted++
	rs.credit--
	if cc != nil {
		cc.admitted++
	}
	c.admitted.Add(1)
	return Ticket{rs}, Admitted
}

// paceLocked adds to the room's credit the parts of its share due by part
// k of the interval (1 to parts), unused credit carried up to the cap.
// rs.mu held, or c.mu for writing.
func (rs *roomState) paceLocked(k, parts int) {
	for rs.granted < k && rs.held > 0 {
		g := min(rs.share/float64(parts), rs.held)
		if rs.granted == parts-1 {
			g = rs.held
		}
		rs.held -= g
		rs.credit = min(max(rs.credit, 0)+g, rs.share+1+rs.phase)
		rs.granted++
	}
}

// roll ends the interval, unless another Admit did so meanwhile.
func (c *Controller) roll(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.UnixNano() >= c.next.Load() {
		c.rollLocked(now)
	}
}

// RetryAfter is the least a refused publisher should wait: one interval,
// after which the limits and shares move.
func (c *Controller) RetryAfter() time.Duration { return c.cfg.Interval }

// rollLocked ends the interval: it moves the limits by the delays
// measured, computes the shares of the next interval and resets the
// counts. c.mu held for writing.
func (c *Controller) rollLocked(now time.Time) {
	secs := now.Sub(c.start).Seconds()
	if secs <= 0 {
		secs = c.perIntv
	}
	admitted, refused := int(c.admitted.Swap(0)), int(c.refused.Swap(0))
	wd := c.writes.take(writeQuantile)
	c.node.update(c, c.cfg.Target, wd, float64(admitted)/secs, refused > 0)

	st := State{WriteDelay: wd, Refused: refused, Admitted: admitted}
	nodeLimited := c.node.on
	var demands []float64
	quiet, quietRate := 0, 0.0 // the quiet rooms, and what they ask per interval
	queueTarget := time.Duration(float64(c.cfg.Target) * queueShare)
	for name, rs := range c.rooms {
		rs.rate += (float64(rs.attempts) - rs.rate) * rateGain
		qd := rs.queue.take(queueQuantile)
		st.QueueDelay = max(st.QueueDelay, qd)
		if rs.lim.on || rs.admitted >= queueMinAdmitted {
			rs.lim.update(c, queueTarget, qd, float64(rs.admitted)/secs, rs.refused > 0)
		}
		if rs.attempts == 0 {
			rs.idle++
		} else {
			rs.idle = 0
		}
		if !rs.lim.on && rs.idle*int(c.cfg.Interval) >= 2*int(liftAfter) {
			delete(c.rooms, name) // idle and unlimited: forget it
			continue
		}
		if rs.lim.on {
			st.LimitedRooms++
			if st.RoomLimit == 0 || rs.lim.rate < st.RoomLimit {
				st.RoomLimit = rs.lim.rate
			}
		}
		if nodeLimited {
			demands = append(demands, min(float64(rs.attempts), rs.capPerInterval(c.perIntv)))
		}
		if c.quiet(rs) {
			quiet++
			quietRate += rs.rate
		}
	}
	c.newShare = math.Inf(1)
	floor := c.floor()
	if nodeLimited {
		st.NodeLimit = c.node.rate
		capacity := c.node.rate * c.perIntv
		c.newShare = waterLevel(demands, capacity)
		if quietRate > capacity {
			// The quiet rooms come first, as far as the node's limit
			// goes: when what they ask together is more, they share it.
			floor = min(floor, max(c.newShare, capacity/float64(quiet)))
		}
	}
	level := c.newShare
	if !math.IsInf(c.newShare, 1) {
		c.newShare = max(c.newShare, floor) // for rooms not seen yet
	}
	for _, rs := range c.rooms {
		was := rs.share
		rs.share = min(rs.capPerInterval(c.perIntv), level)
		if math.IsInf(rs.share, 1) {
			rs.credit, rs.paced, rs.held = 0, false, 0
		} else {
			if math.IsInf(was, 1) {
				// Newly bound: each room starts at its own point of the
				// credit cycle, so that rooms with shares below one do not
				// all admit in the same interval.
				rs.credit = rs.phase
			}
			rs.paceLocked(c.cfg.Pace, c.cfg.Pace) // what the last interval held back
			quiet := c.quiet(rs)
			if quiet {
				rs.share = max(rs.share, floor) // a quiet room keeps its floor
			}
			// A share below one publish per interval adds up over several.
			// Unused credit is carried up to a cap that the phase offsets
			// too: rooms that left theirs unused do not come back in step.
			// A room that asked for more than its share gets it in parts
			// (Config.Pace); one that asks for less keeps its bursts.
			rs.paced = !quiet && c.cfg.Pace > 1 && float64(rs.attempts) > rs.share
			rs.held, rs.granted = rs.share, 0
			first := c.cfg.Pace // every part at once
			if rs.paced {
				first = 1
			}
			rs.paceLocked(first, c.cfg.Pace)
		}
		rs.connShare = math.Inf(1)
		if !math.IsInf(rs.share, 1) && len(rs.conns) > 0 {
			cd := make([]float64, 0, len(rs.conns))
			for _, cc := range rs.conns {
				cd = append(cd, float64(cc.attempts))
			}
			rs.connShare = waterLevel(cd, rs.share)
		}
		if math.IsInf(rs.share, 1) {
			rs.conns = nil
		} else {
			clear(rs.conns)
		}
		rs.attempts, rs.admitted, rs.refused = 0, 0, 0
	}
	st.Rooms = len(c.rooms)
	if c.cfg.Report != nil && (admitted > 0 || refused > 0 || nodeLimited || st.LimitedRooms > 0 || wd > 0) {
		c.cfg.Report(st)
	}
	c.start = now
	c.next.Store(now.Add(c.cfg.Interval).UnixNano())
}

// floor is the least share, per interval, of a room that asked for no
// more than that in the last interval: MinRate with a burst of twice that
// (2 publishes per 100 ms by default), so that a room publishing at a
// modest steady rate is never refused for the phase of its publishes
// against the intervals. Rooms asking for more share what is left, down to
// less than one publish per interval.
func (c *Controller) floor() float64 { return max(1, 2*c.cfg.MinRate*c.perIntv) }

// quiet reports that a room asks for little: no more than its floor in
// the last interval, and no more than quietMax × MinRate on average over
// the last few. A room that floods at a rate a little above the floor asks
// for no more than it in some intervals, but is not quiet on average.
func (c *Controller) quiet(rs *roomState) bool {
	return float64(rs.attempts) <= c.floor() && rs.rate <= quietMax*c.cfg.MinRate*c.perIntv
}

// capPerInterval is the room's own limit over one interval (+Inf: none).
func (rs *roomState) capPerInterval(perIntv float64) float64 {
	if !rs.lim.on {
		return math.Inf(1)
	}
	return rs.lim.rate * perIntv
}

// update moves the limit by the interval's delay d and admitted rate:
// above the target it comes on at the admitted rate, or is cut from its
// own, times target/d (within cutMin and cutMax); below it, it rises by up
// to raiseStep, and is lifted once the delay stayed below the target for
// liftAfter with nothing refused.
func (l *limit) update(c *Controller, target, d time.Duration, admittedRate float64, refused bool) {
	if d > target {
		// Coming on, the limit starts from what was admitted; once on,
		// from itself (what one interval admits is lumpy when shares are
		// below one publish per interval).
		base := admittedRate
		if l.on {
			base = l.rate
		}
		cut := min(cutMax, max(cutMin, float64(target)/float64(d)))
		l.on, l.good = true, 0
		l.rate = max(c.cfg.MinRate, base*cut)
		return
	}
	if !l.on {
		return
	}
	l.good++
	if !refused && time.Duration(l.good)*c.cfg.Interval >= liftAfter {
		*l = limit{}
		return
	}
	raised := l.rate * (1 + raiseStep*(1-float64(d)/float64(target)))
	// A limit far above what is asked protects nothing: it rises no
	// further than twice the admitted rate.
	if raised > l.rate && raised > 2*admittedRate+c.cfg.MinRate {
		raised = max(l.rate, 2*admittedRate+c.cfg.MinRate)
	}
	l.rate = raised
}

// phase is a number in [0, 1) fixed by name (FNV-1a).
func phase(name string) float64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return float64(h.Sum32()) / (1 << 32)
}

// waterLevel is the max-min fair level of capacity over demands: each
// demand at or below the level is met in full, and every larger one gets
// the level. +Inf when capacity meets every demand.
func waterLevel(demands []float64, capacity float64) float64 {
	sum := 0.0
	for _, d := range demands {
		sum += d
	}
	if sum <= capacity {
		return math.Inf(1)
	}
	slices.Sort(demands)
	left := capacity
	for i, d := range demands {
		level := left / float64(len(demands)-i)
		if d > level {
			return level
		}
		left -= d
	}
	return math.Inf(1)
}
