package admission

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// clock is a hand-driven clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func newTest(c *clock, r func(State)) *Controller {
	return New(Config{Now: c.now, Report: r})
}

// offer makes n publish attempts to room by conn, observing queue delay q
// for each admitted one, and returns how many were admitted and the
// reasons of the refusals.
func offer(c *Controller, room, conn string, n int, q time.Duration) (admitted int, reasons map[Reason]int) {
	reasons = map[Reason]int{}
	for range n {
		t, r := c.Admit(room, conn)
		if r == Admitted {
			admitted++
			t.ObserveQueue(q)
			continue
		}
		reasons[r]++
	}
	return admitted, reasons
}

// overInterval makes f's offers through one interval, in quarters, the
// clock moving a quarter of the interval after each, so that a paced share
// comes in as it would (f(part) offers what that part brings).
func overInterval(ck *clock, f func(part int)) {
	for p := range quarters {
		f(p)
		ck.add(DefaultInterval / quarters)
	}
}

const quarters = 4

// offerRooms makes n publish attempts to each of rooms rooms (prefix0,
// prefix1, ...), one publisher each, and returns how many were admitted.
func offerRooms(c *Controller, prefix string, rooms, n int) (admitted int) {
	for r := range rooms {
		got, _ := offer(c, fmt.Sprintf("%s%d", prefix, r), "p", n, time.Millisecond)
		admitted += got
	}
	return admitted
}

func TestNoDelayAdmitsAll(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	for range 50 {
		if got, _ := offer(c, "a", "c1", 1000, time.Millisecond); got != 1000 {
			t.Fatalf("admitted %d of 1000 with no delay", got)
		}
		c.ObserveWrite(2 * time.Millisecond)
		ck.add(DefaultInterval)
	}
}

func TestOff(t *testing.T) {
	ck := newClock()
	c := New(Config{Target: -1, Now: ck.now})
	for range 20 {
		c.ObserveWrite(time.Second)
		if got, _ := offer(c, "a", "c1", 100, time.Second); got != 100 {
			t.Fatalf("admission off admitted %d of 100", got)
		}
		ck.add(DefaultInterval)
	}
}

// TestRoomQueueDelayLimitsThatRoomOnly: a room whose publishes wait past
// the target is limited and refused (reason room) beyond its limit; a room
// beside it whose publishes do not wait is never refused.
func TestRoomQueueDelayLimitsThatRoomOnly(t *testing.T) {
	ck := newClock()
	var last State
	c := newTest(ck, func(st State) { last = st })
	// One interval: 100 publishes to "hot", each waiting 200 ms.
	offer(c, "hot", "c1", 100, 200*time.Millisecond)
	offer(c, "calm", "c2", 5, time.Millisecond)
	ck.add(DefaultInterval)
	got, refused, calm := 0, 0, 0
	overInterval(ck, func(part int) {
		n, reasons := offer(c, "hot", "c1", 25, 200*time.Millisecond)
		got, refused = got+n, refused+reasons[RefusedRoom]
		if part == 0 {
			calm, _ = offer(c, "calm", "c2", 5, time.Millisecond)
		}
	})
	if got >= 100 || refused == 0 {
		t.Fatalf("hot room: admitted %d of 100, %d refused with reason room; want refusals", got, refused)
	}
	// 1000/s × cut (0.5, as 50/200 is below it) = 500/s: 50 per interval.
	if got != 50 {
		t.Errorf("hot room admitted %d in the interval after the cut, want 50", got)
	}
	if calm != 5 {
		t.Errorf("calm room admitted %d of 5", calm)
	}
	offer(c, "hot", "c1", 1, 0) // rolls the interval
	if last.LimitedRooms != 1 || last.QueueDelay < 150*time.Millisecond {
		t.Errorf("state %+v; want one limited room, queue delay about 200 ms", last)
	}
}

// TestNodeLimitSharedFairly: a node whose writes lag is limited as a
// whole; its limit is shared max-min fair, so that a room asking for less
// than its share is never refused while the flooding rooms are.
func TestNodeLimitSharedFairly(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	var flood []string
	for i := range 40 {
		flood = append(flood, fmt.Sprintf("f%d", i))
	}
	quietRefused := 0
	floodRefused := 0
	for i := range 40 {
		for _, r := range flood {
			_, reasons := offer(c, r, "pub-"+r, 300, time.Millisecond)
			floodRefused += reasons[RefusedRoom]
		}
		if i%2 == 0 { // the quiet room: 10/s, both of a pair in one interval
			_, reasons := offer(c, "quiet", "pub-q", 2, time.Millisecond)
			quietRefused += len(reasons)
		}
		for range 10 {
			c.ObserveWrite(150 * time.Millisecond)
		}
		ck.add(DefaultInterval)
	}
	wantFairness(t, "rooms", floodRefused, quietRefused)
}

// wantFairness fails unless the flood was refused and the quiet never.
func wantFairness(t *testing.T, what string, floodRefused, quietRefused int) {
	t.Helper()
	if floodRefused == 0 {
		t.Fatalf("the flooding %s were never refused", what)
	}
	if quietRefused != 0 {
		t.Fatalf("the quiet one of the %s was refused %d times", what, quietRefused)
	}
}

// TestPublisherShare: in a limited room, a publisher flooding it is
// refused (reason publisher) while another asking for little is not.
func TestPublisherShare(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	quietRefused, floodByPub := 0, 0
	for i := range 30 {
		// Waits past the target for two intervals limit the room; then
		// they stay below it, and the limit holds.
		q := 15 * time.Millisecond
		if i < 2 {
			q = 100 * time.Millisecond
		}
		// The quiet publisher is first in odd intervals, last in even
		// ones: both orders are covered.
		if i%2 == 1 {
			_, r := offer(c, "room", "quiet", 2, q)
			quietRefused += len(r)
		}
		_, r := offer(c, "room", "flood", 200, q)
		floodByPub += r[RefusedPublisher]
		if i%2 == 0 {
			_, r := offer(c, "room", "quiet", 2, q)
			quietRefused += len(r)
		}
		ck.add(DefaultInterval)
	}
	wantFairness(t, "publishers (reason publisher)", floodByPub, quietRefused)
}

// TestRecovery: once delays stay below the target for liftAfter with
// nothing refused, every limit is lifted and nothing is refused.
func TestRecovery(t *testing.T) {
	ck := newClock()
	var last State
	c := newTest(ck, func(st State) { last = st })
	for range 10 { // overloaded
		offer(c, "room", "p", 500, 300*time.Millisecond)
		c.ObserveWrite(300 * time.Millisecond)
		ck.add(DefaultInterval)
	}
	if _, r := offer(c, "room", "p", 500, 300*time.Millisecond); len(r) == 0 {
		t.Fatal("no refusal under overload")
	}
	ck.add(DefaultInterval)
	// Load falls to a trickle, without delay.
	lifted := -1
	for i := range 40 {
		got, r := offer(c, "room", "p", 3, time.Millisecond)
		c.ObserveWrite(time.Millisecond)
		if len(r) == 0 && got == 3 && last.NodeLimit == 0 && last.LimitedRooms == 0 && lifted < 0 {
			lifted = i
		}
		ck.add(DefaultInterval)
	}
	if lifted < 0 {
		t.Fatalf("limits never lifted; last state %+v", last)
	}
	if max := int(liftAfter/DefaultInterval) + 3; lifted > max {
		t.Errorf("limits lifted after %d intervals, want at most %d", lifted, max)
	}
	if got, _ := offer(c, "room", "p", 1000, time.Millisecond); got != 1000 {
		t.Errorf("after recovery admitted %d of 1000", got)
	}
}

// TestIdleRoomsForgotten: rooms that stop publishing are dropped.
func TestIdleRoomsForgotten(t *testing.T) {
	ck := newClock()
	var last State
	c := newTest(ck, func(st State) { last = st })
	for i := range 100 {
		offer(c, "room-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "p", 1, 0)
	}
	for range 30 {
		ck.add(DefaultInterval)
		offer(c, "live", "p", 1, 0)
	}
	if last.Rooms != 1 {
		t.Fatalf("following %d rooms, want 1 (the live one)", last.Rooms)
	}
}

func TestWaterLevel(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		demands  []float64
		capacity float64
		want     float64
	}{
		{nil, 10, inf},
		{[]float64{1, 2, 3}, 6, inf},
		{[]float64{1, 100}, 11, 10},
		{[]float64{100, 100}, 10, 5},
		{[]float64{1, 1, 100, 100}, 10, 4},
		{[]float64{5}, 2, 2},
	} {
		if got := waterLevel(append([]float64(nil), tc.demands...), tc.capacity); got != tc.want {
			t.Errorf("waterLevel(%v, %v) = %v, want %v", tc.demands, tc.capacity, got, tc.want)
		}
	}
}

func TestHistQuantile(t *testing.T) {
	for i := range histBuckets - 1 {
		lo := bucketLow(i)
		if bucketOf(lo) != i || (lo > 0 && bucketOf(lo-1) != i-1) {
			t.Fatalf("bucket %d: low %v maps to %d (below it: %d)", i, lo, bucketOf(lo), bucketOf(lo-1))
		}
	}
	var h delayHist
	for i := range 100 {
		h.observe(time.Duration(i+1) * time.Millisecond)
	}
	if q := h.take(0.9); q < 80*time.Millisecond || q > 100*time.Millisecond {
		t.Errorf("p90 of 1..100 ms = %v", q)
	}
	if q := h.take(0.9); q != 0 {
		t.Errorf("after take, p90 = %v, want 0", q)
	}
}

// TestNodeLimitHoldsOverManyRooms: with many rooms flooding, what the node
// admits follows its limit, not the number of rooms: a share below one
// publish per interval adds up over several intervals instead.
func TestNodeLimitHoldsOverManyRooms(t *testing.T) {
	ck := newClock()
	var last State
	c := newTest(ck, func(st State) { last = st })
	admitted := 0
	for i := range 60 {
		if got := offerRooms(c, "f", 100, 5); i >= 50 {
			admitted += got
		}
		c.ObserveWrite(time.Second)
		ck.add(DefaultInterval)
	}
	// The limit is at its floor, 10/s: 10 publishes over the last 10
	// intervals, give or take the credits' rounding.
	if last.NodeLimit != DefaultMinRate {
		t.Fatalf("node limit %v, want %v", last.NodeLimit, DefaultMinRate)
	}
	if admitted > 30 {
		t.Fatalf("admitted %d in 10 intervals at a node limit of %v/s", admitted, last.NodeLimit)
	}
}

// TestQuietRoomBurstKeepsFloor: a room at 10/s whose publishes a starved
// reader takes in bursts (3 in one interval, none in the next two) is
// still never refused while the node is limited.
func TestQuietRoomBurstKeepsFloor(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	quietRefused, floodRefused := 0, 0
	for i := range 60 {
		for r := range 50 {
			_, reasons := offer(c, fmt.Sprintf("f%d", r), "p", 10, time.Millisecond)
			floodRefused += len(reasons)
		}
		if i%3 == 0 {
			_, reasons := offer(c, "quiet", "q", 3, time.Millisecond)
			quietRefused += len(reasons)
		}
		c.ObserveWrite(time.Second)
		ck.add(DefaultInterval)
	}
	wantFairness(t, "rooms", floodRefused, quietRefused)
}

// TestFloodedRoomsDoNotAdmitInStep: 100 rooms, one flooding publisher
// each, on a node whose write delay grows with what it admits (the target
// at 50 publishes in an interval). The node's limit settles, and each interval
// admits about its share of it: the rooms do not all admit in the same
// intervals and none in the others (a burst of 100 rooms' fan-out at once
// is what the write delay's tail is made of), and a lone publisher is not
// held to whole publishes per interval below its room's share.
func TestFloodedRoomsDoNotAdmitInStep(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	var per []int
	for i := range 250 {
		admitted := 0
		overInterval(ck, func(int) {
			for r := range 100 {
				room := fmt.Sprintf("bench-%d", r)
				n, _ := offer(c, room, "pub-"+room, 20/quarters, time.Millisecond)
				admitted += n
			}
			if admitted > 0 {
				c.ObserveWrite(time.Duration(admitted) * DefaultTarget / 50)
			}
		})
		if i >= 50 {
			per = append(per, admitted)
		}
	}
	sum, most := 0, 0
	for _, n := range per {
		sum += n
		most = max(most, n)
	}
	mean := float64(sum) / float64(len(per))
	if mean < 20 || float64(most) > 2.5*mean {
		t.Fatalf("per interval: mean %.1f admitted, most %d; want a mean of 20 or more, at most 2.5 times it in any\n%v", mean, most, per)
	}
}

// TestFloodNearTheFloorIsNotQuiet: 100 rooms publishing 25/s each (2 and 3
// publishes in alternate intervals) on a node limited to its floor: the
// rooms ask for no more than a quiet room's floor in every other
// interval, but not on average, so they share the node's limit and do not
// each take the floor (100 floors would be 20 times that limit). A room
// at 10/s among them is never refused.
func TestFloodNearTheFloorIsNotQuiet(t *testing.T) {
	ck := newClock()
	var last State
	c := newTest(ck, func(st State) { last = st })
	admitted, quietRefused := 0, 0
	for i := range 100 {
		if got := offerRooms(c, "f", 100, 2+i%2); i >= 80 {
			admitted += got
		}
		_, reasons := offer(c, "quiet", "q", 1, time.Millisecond)
		quietRefused += len(reasons)
		c.ObserveWrite(time.Second)
		ck.add(DefaultInterval)
	}
	if last.NodeLimit != DefaultMinRate {
		t.Fatalf("node limit %v, want %v", last.NodeLimit, DefaultMinRate)
	}
	// 20 intervals at 10/s: 20 publishes, the quiet room's among them.
	if admitted > 40 {
		t.Fatalf("the flooding rooms admitted %d in 20 intervals at a node limit of %v/s", admitted, last.NodeLimit)
	}
	if quietRefused != 0 {
		t.Fatalf("the room at 10/s was refused %d times", quietRefused)
	}
}

// TestQuietRoomsShareALimitTheyExceed: 100 rooms at 10/s each, every one
// quiet, on a node held at its floor of 10/s: together they ask for ten
// times the limit, so their floors give way and they share it.
func TestQuietRoomsShareALimitTheyExceed(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	admitted := 0
	for i := range 100 {
		if got := offerRooms(c, "q", 100, 1); i >= 80 {
			admitted += got
		}
		c.ObserveWrite(time.Second)
		ck.add(DefaultInterval)
	}
	// 20 at the limit, give or take the credits' rounding over 100 rooms.
	if admitted > 60 {
		t.Fatalf("100 quiet rooms admitted %d in 20 intervals at a node limit of 10/s", admitted)
	}
}

// TestQueueHeldToItsShareOfTheTarget: a room whose publishes wait 23 ms
// before their operation (below half the 50 ms target, above its two
// fifths) is limited: its readers will see that wait and the fan-out's
// write delay after it.
func TestQueueHeldToItsShareOfTheTarget(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	refused := 0
	for range 10 {
		_, r := offer(c, "room", "p", 100, 23*time.Millisecond)
		refused += r[RefusedRoom]
		c.ObserveWrite(time.Millisecond)
		ck.add(DefaultInterval)
	}
	if refused == 0 {
		t.Fatal("a room waiting 23 ms per publish, against a target of 50 ms, was never limited")
	}
}

// TestFloodPacedThroughTheInterval: a limited room flooded through the
// interval gets its share in parts, each part of the interval admitting
// about a quarter of it, rather than all of it at the interval's start
// (a burst that waits in its publishers' queues); a quiet publisher in it
// still gets its publishes through.
func TestFloodPacedThroughTheInterval(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	offer(c, "room", "flood", 100, 200*time.Millisecond) // limited: 50 per interval
	ck.add(DefaultInterval)
	for i := range 10 {
		var parts []int
		quiet := 0
		overInterval(ck, func(part int) {
			n, _ := offer(c, "room", "flood", 50, time.Millisecond)
			parts = append(parts, n)
			if part == 2 {
				q, _ := offer(c, "room", "quiet", 1, time.Millisecond)
				quiet += q
			}
		})
		if i < 2 {
			continue // the limit settles
		}
		sum, most := 0, 0
		for _, n := range parts {
			sum, most = sum+n, max(most, n)
		}
		if sum == 0 || float64(most) > 1.5*float64(sum)/float64(len(parts)) || quiet != 1 {
			t.Fatalf("interval %d: admitted %v in its parts, the quiet publisher %d of 1", i, parts, quiet)
		}
	}
}

// TestFewPublishesDoNotLimitARoom: a room publishing a few messages an
// interval, whose publishes wait past the target (a pause of the process),
// is not limited: it cannot be what queues them.
func TestFewPublishesDoNotLimitARoom(t *testing.T) {
	ck := newClock()
	c := newTest(ck, nil)
	for i := range 20 {
		if got, r := offer(c, "chat", "p", 5, 200*time.Millisecond); got != 5 {
			t.Fatalf("interval %d: admitted %d of 5, refused %v", i, got, r)
		}
		ck.add(DefaultInterval)
	}
}
