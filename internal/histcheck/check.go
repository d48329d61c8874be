package histcheck

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// maxExamples bounds the examples a report keeps per anomaly.
const maxExamples = 5

// The anomalies a Report counts, in the order Err names them.
const (
	AnomalyLost         = "lost"
	AnomalyDuplicates   = "duplicates"
	AnomalyReorders     = "reorders"
	AnomalyGaps         = "gaps"
	AnomalyDivergent    = "divergent"
	AnomalyEpochChanges = "epoch_changes"
	AnomalyResets       = "resets"
)

var anomalies = []string{AnomalyLost, AnomalyDuplicates, AnomalyReorders, AnomalyGaps, AnomalyDivergent, AnomalyEpochChanges, AnomalyResets}

// ErrAnomalies is wrapped by Report.Err and Summary.Err.
var ErrAnomalies = errors.New("histcheck: anomalies")

// Report is the verdict on one room (or, in Summary.Total, on all).
type Report struct {
	Room string
	// What happened, for scale: distinct keys published, acknowledged,
	// answered with an err at least once, never acknowledged; durable events
	// delivered to subscribers; subscribers seen; left frames and byes
	// received; final histories fetched from nodes.
	Published, Acked, PubErrors, Unacked, Delivered, Subscribers, Lefts, Histories int
	// AckPause is the longest time between two successive
	// acknowledgements in the room: under steady load, how long a fault
	// kept it from accepting writes.
	AckPause time.Duration

	// Lost counts acknowledged messages missing from the final history of
	// a subscriber or of a node's HTTP API: absent at their seq in the
	// epoch they were acknowledged in, or acknowledged in an epoch the
	// history no longer has and absent from it.
	Lost int
	// Duplicates counts keys found at two seqs of one epoch (or
	// acknowledged with two seqs), and seqs delivered twice to one
	// subscriber within one join.
	Duplicates int
	// Reorders counts events a subscriber received after one with a
	// higher seq of the same epoch.
	Reorders int
	// Gaps counts the times a subscriber's stream skipped seqs without a
	// reset (a missing seq live, a resume that did not reach the room's
	// seq, an epoch change without reset), and holes in a node's history.
	Gaps int
	// Divergent counts positions (epoch, seq) where two subscribers or
	// nodes disagree on the event, rooms whose seq went back below one a
	// subscriber had seen, and observers that ended at different points.
	Divergent int
	// EpochChanges counts the room's changes of epoch: the distinct moves
	// from one epoch to another that subscribers saw, or the epochs beyond
	// the first, whichever is more.
	EpochChanges int
	// Resets counts joined answers with reset to a subscriber that had
	// already joined the room.
	Resets int

	// Examples holds up to a few descriptions per anomaly.
	Examples map[string][]string
}

// Count returns the count of anomaly a (one of the Anomaly* names), 0 for
// another name.
func (r *Report) Count(a string) int {
	if !slices.Contains(anomalies, a) {
		return 0
	}
	return *r.counter(a)
}

// counter points at the count of anomaly a, one of anomalies.
func (r *Report) counter(a string) *int {
	switch a {
	case AnomalyLost:
		return &r.Lost
	case AnomalyDuplicates:
		return &r.Duplicates
	case AnomalyReorders:
		return &r.Reorders
	case AnomalyGaps:
		return &r.Gaps
	case AnomalyDivergent:
		return &r.Divergent
	case AnomalyEpochChanges:
		return &r.EpochChanges
	}
	return &r.Resets
}

// note counts one anomaly a and keeps its example.
func (r *Report) note(a string, format string, args ...any) {
	*r.counter(a)++
	r.example(a, format, args...)
}

func (r *Report) example(a string, format string, args ...any) {
	if r.Examples == nil {
		r.Examples = map[string][]string{}
	}
	if len(r.Examples[a]) < maxExamples {
		r.Examples[a] = append(r.Examples[a], fmt.Sprintf(format, args...))
	}
}

// OK reports whether every anomaly count is zero.
func (r *Report) OK() bool { return r.Err() == nil }

// Err names every non-zero anomaly with its count and examples, or is nil.
func (r *Report) Err() error {
	var parts []string
	for _, a := range anomalies {
		if n := r.Count(a); n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d (%s)", a, n, strings.Join(r.Examples[a], "; ")))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%w: room %s: %s", ErrAnomalies, r.Room, strings.Join(parts, ", "))
}

// String is a one-line account of the counts.
func (r *Report) String() string {
	return fmt.Sprintf("room %s: published=%d acked=%d pub_errors=%d unacked=%d delivered=%d subscribers=%d lefts=%d histories=%d ack_pause=%v | lost=%d duplicates=%d reorders=%d gaps=%d divergent=%d epoch_changes=%d resets=%d",
		r.Room, r.Published, r.Acked, r.PubErrors, r.Unacked, r.Delivered, r.Subscribers, r.Lefts, r.Histories, r.AckPause.Round(time.Millisecond),
		r.Lost, r.Duplicates, r.Reorders, r.Gaps, r.Divergent, r.EpochChanges, r.Resets)
}

// add sums o's counts into r, and the first examples, prefixed by o's room.
func (r *Report) add(o *Report) {
	r.Published += o.Published
	r.Acked += o.Acked
	r.PubErrors += o.PubErrors
	r.Unacked += o.Unacked
	r.Delivered += o.Delivered
	r.Subscribers += o.Subscribers
	r.Lefts += o.Lefts
	r.Histories += o.Histories
	r.AckPause = max(r.AckPause, o.AckPause)
	for _, a := range anomalies {
		*r.counter(a) += o.Count(a)
		for _, ex := range o.Examples[a] {
			r.example(a, "%s: %s", o.Room, ex)
		}
	}
}

// Summary is Check's verdict on every room.
type Summary struct {
	Rooms []Report
	Total Report
}

// OK reports whether every room's report is clean.
func (s *Summary) OK() bool { return s.Total.OK() }

// Err names every non-zero anomaly of every room, or is nil.
func (s *Summary) Err() error {
	var errs []error
	for i := range s.Rooms {
		if err := s.Rooms[i].Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// String lists each room's counts and the total, one per line.
func (s *Summary) String() string {
	var b strings.Builder
	for i := range s.Rooms {
		b.WriteString(s.Rooms[i].String())
		b.WriteByte('\n')
	}
	b.WriteString(s.Total.String())
	return b.String()
}

// Check judges every room of the history.
func (h *History) Check() Summary {
	s := Summary{Total: Report{Room: "(all)"}}
	for _, r := range h.Rooms() {
		rep := h.CheckRoom(r)
		s.Total.add(&rep)
		s.Rooms = append(s.Rooms, rep)
	}
	return s
}

// CheckRoom judges one room.
func (h *History) CheckRoom(room string) Report {
	h.mu.Lock()
	var evs []Event
	for _, e := range h.events {
		if e.Room == room {
			evs = append(evs, e)
		}
	}
	finals := slices.Clone(h.finals[room])
	h.mu.Unlock()

	c := newChecker(room)
	subs := map[string]*observer{}
	var order []string
	var lastAck time.Time
	for _, e := range evs {
		switch e.Op {
		case OpPub:
			c.published[e.Key] = true
		case OpAck:
			c.ack(e)
			if !lastAck.IsZero() {
				c.rep.AckPause = max(c.rep.AckPause, e.At.Sub(lastAck))
			}
			lastAck = e.At
		case OpPubErr:
			c.errored[e.Key] = true
		case OpLeft:
			c.rep.Lefts++
		case OpJoined, OpDeliver:
			o := subs[e.Client]
			if o == nil {
				o = &observer{name: "subscriber " + e.Client, got: map[uint64]string{}}
				subs[e.Client] = o
				order = append(order, e.Client)
			}
			c.subscriber(o, e)
		}
	}
	obs := make([]*observer, 0, len(order)+len(finals))
	for _, id := range order {
		obs = append(obs, subs[id])
	}
	for _, f := range finals {
		obs = append(obs, c.final(f))
	}
	c.ends(obs)
	c.lost(obs)
	c.rep.Subscribers = len(order)
	c.rep.Histories = len(finals)
	c.rep.Published = len(c.published)
	c.rep.Acked = len(c.acks)
	c.rep.PubErrors = len(c.errored)
	for k := range c.published {
		if _, ok := c.acks[k]; !ok {
			c.rep.Unacked++
		}
	}
	if n := max(len(c.moves), len(c.epochs)-1); n > 0 {
		c.rep.EpochChanges = n
		c.rep.example(AnomalyEpochChanges, "epochs in order seen: %s", strings.Join(c.epochOrder, ", "))
		for _, mv := range c.moveOrder {
			c.rep.example(AnomalyEpochChanges, "a subscriber went from %s", mv)
		}
	}
	return c.rep
}

// observer is what one subscriber, or one node's final history, holds of
// the room: its current epoch and the events it has of it, complete over
// the seqs (lo, hi].
type observer struct {
	name   string
	node   string
	final  bool // a node's final history, not a subscriber
	epoch  string
	lo, hi uint64
	got    map[uint64]string
}

// position is what the first observer to report a seq of an epoch saw.
type position struct {
	key string
	by  string
}

// checker holds the state of one room's check.
type checker struct {
	rep        Report
	published  map[string]bool
	errored    map[string]bool
	acks       map[string]Event
	epochs     map[string]bool
	epochOrder []string
	moves      map[string]bool // "a to b": epoch changes subscribers saw
	moveOrder  []string
	truth      map[string]map[uint64]position // epoch -> seq -> first seen
	keySeqs    map[string]map[string]uint64   // epoch -> key -> first seq
	diverged   map[string]map[uint64]bool     // positions already counted
	dupKeys    map[string]map[string]bool     // keys already counted
}

func newChecker(room string) *checker {
	return &checker{
		rep:       Report{Room: room},
		published: map[string]bool{}, errored: map[string]bool{}, acks: map[string]Event{},
		epochs: map[string]bool{}, moves: map[string]bool{}, truth: map[string]map[uint64]position{},
		keySeqs: map[string]map[string]uint64{}, diverged: map[string]map[uint64]bool{},
		dupKeys: map[string]map[string]bool{},
	}
}

func (c *checker) epoch(e string) {
	if e != "" && !c.epochs[e] {
		c.epochs[e] = true
		c.epochOrder = append(c.epochOrder, e)
	}
}

func (c *checker) ack(e Event) {
	if prev, ok := c.acks[e.Key]; ok {
		if prev.Seq != e.Seq && !c.dupKey(prev.Epoch, e.Key) {
			c.rep.note(AnomalyDuplicates, "key %s acknowledged as seq %d and as seq %d", e.Key, prev.Seq, e.Seq)
		}
		return
	}
	c.acks[e.Key] = e
	c.epoch(e.Epoch)
}

// dupKey marks key as counted as a duplicate in epoch, reporting whether it
// already was.
func (c *checker) dupKey(epoch, key string) bool {
	if c.dupKeys[epoch] == nil {
		c.dupKeys[epoch] = map[string]bool{}
	}
	was := c.dupKeys[epoch][key]
	c.dupKeys[epoch][key] = true
	return was
}

// place records that observer by saw key at seq of epoch, counting a
// divergence when another saw something else there and a duplicate when
// the key is at another seq too.
func (c *checker) place(epoch string, seq uint64, key, by string) {
	if c.truth[epoch] == nil {
		c.truth[epoch] = map[uint64]position{}
		c.keySeqs[epoch] = map[string]uint64{}
		c.diverged[epoch] = map[uint64]bool{}
	}
	if p, ok := c.truth[epoch][seq]; !ok {
		c.truth[epoch][seq] = position{key: key, by: by}
	} else if p.key != key && !c.diverged[epoch][seq] {
		c.diverged[epoch][seq] = true
		c.rep.note(AnomalyDivergent, "epoch %s seq %d: %s has %q, %s has %q", epoch, seq, p.by, p.key, by, key)
	}
	if key == "" {
		return
	}
	if s, ok := c.keySeqs[epoch][key]; !ok {
		c.keySeqs[epoch][key] = seq
	} else if s != seq && !c.dupKey(epoch, key) {
		c.rep.note(AnomalyDuplicates, "key %s at seq %d and seq %d of epoch %s (%s)", key, s, seq, epoch, by)
	}
}

// subscriber takes in one event of subscriber o.
func (c *checker) subscriber(o *observer, e Event) {
	if e.Node != "" {
		o.node = e.Node
	}
	switch e.Op {
	case OpJoined:
		c.joined(o, e)
	case OpDeliver:
		c.rep.Delivered++
		c.deliver(o, e)
	}
}

func (c *checker) joined(o *observer, e Event) {
	c.epoch(e.Epoch)
	if mv := o.epoch + " to " + e.Epoch; o.epoch != "" && o.epoch != e.Epoch && !c.moves[mv] {
		c.moves[mv] = true
		c.moveOrder = append(c.moveOrder, mv)
	}
	switch {
	case e.Reset:
		if o.epoch != "" {
			c.rep.note(AnomalyResets, "%s on %s: reset from %s/%d to %s/%d", o.name, e.Node, o.epoch, o.hi, e.Epoch, e.Seq)
		}
	case o.epoch == "":
		// A first join without reset: nothing to hold it against.
	case e.Epoch != o.epoch:
		c.rep.note(AnomalyGaps, "%s on %s: resumed in epoch %s at %d after %s/%d without reset", o.name, e.Node, e.Epoch, e.Seq, o.epoch, o.hi)
	case e.Seq > o.hi:
		c.rep.note(AnomalyGaps, "%s on %s: resumed at %d but the room is at %d: seqs %d-%d missed", o.name, e.Node, o.hi, e.Seq, o.hi+1, e.Seq)
		o.hi = e.Seq
		return
	case e.Seq < o.hi:
		c.rep.note(AnomalyDivergent, "%s on %s: had seen seq %d of epoch %s, the room says %d", o.name, e.Node, o.hi, e.Epoch, e.Seq)
		for s := range o.got {
			if s > e.Seq {
				delete(o.got, s)
			}
		}
		o.hi = e.Seq
		return
	default:
		return
	}
	o.epoch, o.lo, o.hi = e.Epoch, e.Seq, e.Seq
	clear(o.got)
}

func (c *checker) deliver(o *observer, e Event) {
	if o.epoch == "" {
		c.rep.note(AnomalyReorders, "%s on %s: seq %d before any joined", o.name, e.Node, e.Seq)
		return
	}
	c.place(o.epoch, e.Seq, e.Key, o.name)
	if k, ok := o.got[e.Seq]; ok {
		c.rep.note(AnomalyDuplicates, "%s on %s: seq %d of epoch %s twice (%q, %q)", o.name, e.Node, e.Seq, o.epoch, k, e.Key)
		return
	}
	switch {
	case e.Seq <= o.hi:
		c.rep.note(AnomalyReorders, "%s on %s: seq %d of epoch %s after seq %d", o.name, e.Node, e.Seq, o.epoch, o.hi)
		if e.Seq > o.lo {
			o.got[e.Seq] = e.Key
		}
		return
	case e.Seq > o.hi+1:
		c.rep.note(AnomalyGaps, "%s on %s: seq %d of epoch %s after seq %d: seqs %d-%d missed", o.name, e.Node, e.Seq, o.epoch, o.hi, o.hi+1, e.Seq-1)
	}
	o.got[e.Seq] = e.Key
	o.hi = e.Seq
}

// final turns a node's final history into an observer.
func (c *checker) final(f Final) *observer {
	o := &observer{name: "history at " + f.Node, node: f.Node, final: true, epoch: f.Epoch, lo: f.Seq, hi: f.Seq, got: map[uint64]string{}}
	c.epoch(f.Epoch)
	if len(f.Entries) > 0 {
		o.lo = f.Entries[0].Seq - 1
	}
	next := o.lo + 1
	for _, en := range f.Entries {
		if en.Seq != next {
			c.rep.note(AnomalyGaps, "%s: seq %d follows %d in the history of epoch %s", o.name, en.Seq, next-1, f.Epoch)
		}
		next = en.Seq + 1
		o.got[en.Seq] = en.Key
		c.place(f.Epoch, en.Seq, en.Key, o.name)
	}
	if next-1 != f.Seq && len(f.Entries) > 0 {
		c.rep.note(AnomalyGaps, "%s: history of epoch %s ends at %d, the room's seq is %d", o.name, f.Epoch, next-1, f.Seq)
	}
	return o
}

// ends counts observers that ended at another epoch or seq than the first
// final history (or, without one, the first subscriber).
func (c *checker) ends(obs []*observer) {
	if len(obs) == 0 {
		return
	}
	ref := obs[0]
	for _, o := range obs {
		if o.final {
			ref = o
			break
		}
	}
	for _, o := range obs {
		if o.epoch != ref.epoch || o.hi != ref.hi {
			c.rep.note(AnomalyDivergent, "%s ends at %s/%d, %s at %s/%d", o.name, o.epoch, o.hi, ref.name, ref.epoch, ref.hi)
		}
	}
}

// lost counts the acknowledged keys that some observer's final history
// lacks.
func (c *checker) lost(obs []*observer) {
	keys := slices.Sorted(maps.Keys(c.acks))
	for _, k := range keys {
		a := c.acks[k]
		for _, o := range obs {
			if why := o.lacks(a, c.keySeqs[o.epoch]); why != "" {
				c.rep.note(AnomalyLost, "key %s acknowledged as %s/%d: %s %s", k, a.Epoch, a.Seq, o.name, why)
				break
			}
		}
	}
}

// lacks says why o's final history lacks the acknowledged message a, or ""
// when it has it or cannot tell. keys maps o's final epoch's keys to seqs.
func (o *observer) lacks(a Event, keys map[string]uint64) string {
	if a.Epoch != o.epoch {
		if _, ok := keys[a.Key]; ok {
			return "" // acknowledged while its publisher still held an older epoch
		}
		return fmt.Sprintf("ends in epoch %s without it", o.epoch)
	}
	switch {
	case a.Seq > o.hi:
		return fmt.Sprintf("ends at seq %d", o.hi)
	case a.Seq <= o.lo:
		return ""
	}
	switch k, ok := o.got[a.Seq]; {
	case !ok:
		return "has nothing at that seq"
	case k != a.Key:
		return fmt.Sprintf("has %q there", k)
	}
	return ""
}
