package cluster_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/cluster/placement"
	"github.com/roomd/roomd/internal/histcheck"
	"github.com/roomd/roomd/internal/proctest"
	"github.com/roomd/roomd/protocol"
)

// Tests of a cluster of real roomd processes: the binary built from this
// tree, three nodes on loopback joined by gossip, clients on each, then one
// node crashes (SIGKILL) or leaves (SIGTERM).

func TestProcesses(t *testing.T) {
	bin := proctest.Build(t)
	t.Run("crash", func(t *testing.T) { testProcessCrash(t, bin) })
	t.Run("sigterm", func(t *testing.T) { testProcessLeave(t, bin) })
}

// TestProcessDetectionDefaultTimings measures how long memberlist's LAN
// defaults (no --cluster-fast) take to declare a SIGKILLed node dead, as
// the others' GET /v1/cluster shows it. It takes tens of seconds, so it
// runs only on request: ROOMD_MEASURE_DEFAULT_DETECTION=1 go test -run
// TestProcessDetectionDefaultTimings -v ./cluster/
func TestProcessDetectionDefaultTimings(t *testing.T) {
	if os.Getenv("ROOMD_MEASURE_DEFAULT_DETECTION") == "" {
		t.Skip("set ROOMD_MEASURE_DEFAULT_DETECTION=1 to measure (about a minute)")
	}
	bin := proctest.Build(t)
	var all []time.Duration
	for run := 0; run < 3; run++ {
		nodes := proctest.StartCluster(t, proctest.Options{Bin: bin}, fmt.Sprintf("dflt%d", run), 3)
		victim := nodes[2]
		start := time.Now()
		victim.Kill()
		all = append(all, proctest.WaitDead(t, nodes[:2], victim.Name, start, 60*time.Second)...)
		for _, n := range nodes {
			n.Kill()
		}
	}
	slices.Sort(all)
	t.Logf("memberlist LAN defaults, 3 processes on loopback: a SIGKILLed node shows dead after %v (min), %v (median), %v (max) over %d observations",
		all[0].Round(10*time.Millisecond), all[len(all)/2].Round(10*time.Millisecond), all[len(all)-1].Round(10*time.Millisecond), len(all))
}

// testProcessCrash: one room owned by the node that crashes, one owned by
// another. Members on the other nodes see the dead node's members leave
// within the failure detection time; the dead node's clients reconnect to
// another node and resume. The room it led is led by another replica of its
// group: both rooms keep their epoch, no member is reset, and no member ever
// sees a gap.
func testProcessCrash(t *testing.T, bin string) {
	nodes := proctest.StartCluster(t, proctest.Options{Bin: bin, Fast: true}, "crash", 3)
	victim := nodes[2]
	lost, kept := procRooms(t, nodes, victim.Name)
	t.Logf("room %s is led by %s (the victim), room %s by another node", lost, victim.Name, kept)

	// The publisher is a member on the first node, which survives.
	members, stopPub, epochs := procLoad(t, nodes, lost, kept)
	victimConn := members[kept][2].connID()
	start := time.Now()
	victim.Kill()

	dead := proctest.WaitDead(t, nodes[:2], victim.Name, start, 10*time.Second)
	// The members of the kept room on the surviving nodes see the dead
	// node's member leave.
	var leaves []time.Duration
	checkFor(t, 10*time.Second, func() error {
		leaves = leaves[:0]
		for _, m := range members[kept][:2] {
			at, ok := m.leftAt(victimConn)
			if !ok {
				return fmt.Errorf("%s member on %s has not seen %s leave", kept, m.nodeName(), victimConn)
			}
			leaves = append(leaves, at.Sub(start))
		}
		return nil
	})
	for _, d := range leaves {
		if d > 3*time.Second {
			t.Errorf("a member saw the dead node's member leave after %v, want within 3 s", d)
		}
	}

	// Every member is back, on a live node, and progressing.
	waitProgress(t, members, 20)
	var resets []time.Duration
	for _, m := range members[lost] {
		if st := m.stats(); !st.reset.IsZero() {
			resets = append(resets, st.reset.Sub(start).Round(time.Millisecond))
		}
	}
	t.Logf("SIGKILL -> /v1/cluster says dead: %v; -> members elsewhere get pres leave: %v; -> members of the lost room get reset: %v", dead, leaves, resets)
	stopPub()
	settleMembers(t, members)
	for r, ms := range members {
		for i, m := range ms {
			st := m.okStats(t, r, i)
			if st.node == victim.Name {
				t.Errorf("%s member %d is still on the dead node", r, i)
			}
			// Both rooms keep their epoch: the dead leader's rooms are
			// served by a new leader of their replicated groups.
			if st.epoch != epochs[r] || st.resets != 0 {
				t.Errorf("%s member %d: epoch %q (was %q), %d resets: a room must outlive its leader's crash", r, i, st.epoch, epochs[r], st.resets)
			}
		}
	}
}

// testProcessLeave: SIGTERM on a node hands its rooms over, then its
// clients get bye code 1, reconnect elsewhere and resume: same epoch, no
// gap, no reset, in a room it owned and in another.
func testProcessLeave(t *testing.T, bin string) {
	nodes := proctest.StartCluster(t, proctest.Options{Bin: bin, Fast: true}, "leave", 3)
	victim := nodes[2]
	moved, kept := procRooms(t, nodes, victim.Name)

	members, stopPub, epochs := procLoad(t, nodes, moved, kept)

	start := time.Now()
	err := victim.Term(20 * time.Second)
	t.Logf("SIGTERM -> exit: %v", time.Since(start))
	if err != nil {
		t.Errorf("%s after SIGTERM: %v", victim.Name, err)
	}
	logs := victim.Logs.String()
	last := -1
	for _, msg := range []string{`"msg":"draining`, `"msg":"rooms handed over"`, `"msg":"shutting down"`, `"msg":"leaving the cluster"`, `"msg":"stopped"`} {
		i := strings.Index(logs, msg)
		if i < 0 || i < last {
			t.Errorf("%s's log lacks %s, or has it out of order", victim.Name, msg)
		}
		last = i
	}

	waitProgress(t, members, 20)
	stopPub()
	settleMembers(t, members)
	for r, ms := range members {
		for i, m := range ms {
			st := m.okStats(t, r, i)
			if st.epoch != epochs[r] || st.resets != 0 {
				t.Errorf("%s member %d: epoch %q (was %q), %d resets after a graceful leave", r, i, st.epoch, epochs[r], st.resets)
			}
			if i == 2 && !slices.Contains(st.byes, protocol.Code(1)) {
				t.Errorf("%s member %d on the leaving node got byes %v, want code 1 (shutdown)", r, i, st.byes)
			}
			if st.node == victim.Name {
				t.Errorf("%s member %d is still on the stopped node", r, i)
			}
		}
	}
}

// procLoad starts a member of each room on every node and a publisher
// through the first node's members, and waits until 20 messages went
// through; it returns the members, a stop for the publisher, and each
// room's epoch at that point. Everything stops when the test ends.
func procLoad(t *testing.T, nodes []*proctest.Node, rooms ...string) (map[string][]*procMember, context.CancelFunc, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	members := map[string][]*procMember{}
	var pubs []*procMember
	for _, r := range rooms {
		for i := range nodes {
			m := newProcMember(t, r, proctest.URLs(nodes, i))
			members[r] = append(members[r], m)
			wg.Add(1)
			go func() { defer wg.Done(); m.Run(ctx) }()
		}
		pubs = append(pubs, members[r][0])
	}
	checkFor(t, 15*time.Second, func() error {
		for r, ms := range members {
			for i, m := range ms {
				if _, _, ok := m.Position(r); !ok {
					return fmt.Errorf("%s member %d has not joined", r, i)
				}
			}
		}
		return nil
	})
	pubCtx, stopPub := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		procPublish(pubCtx, pubs)
	}()
	waitProgress(t, members, 20)
	epochs := map[string]string{}
	for _, r := range rooms {
		epochs[r] = members[r][0].epochNow()
	}
	return members, stopPub, epochs
}

// procRooms picks a room that the victim owns and one that another node
// owns, by the placement every node computes.
func procRooms(t *testing.T, nodes []*proctest.Node, victim string) (owned, other string) {
	t.Helper()
	table := placement.NewTable(proctest.Names(nodes), placement.DefaultPartitions, 0)
	for i := 0; owned == "" || other == ""; i++ {
		r := fmt.Sprintf("proc:room-%d", i)
		if _, o := table.OwnerOf(r); o == victim && owned == "" {
			owned = r
		} else if o != victim && other == "" {
			other = r
		}
	}
	return owned, other
}

// procMember is a member of one room on a client that stays in it across
// reconnects (histcheck.Member): after a lost connection or a bye it
// connects to the next URL with its previous connection id and re-joins
// with since; after left room_moved it re-joins. It fails on a gap, a
// reorder or a duplicate within an epoch, an epoch change without reset,
// and a left with another code than room_moved.
type procMember struct {
	*histcheck.Member
	room string
	hist *histcheck.History

	mu     sync.Mutex
	leaves map[string]time.Time // connection id -> when its pres leave came
}

type procMemberStats struct {
	node, epoch string
	resets      int
	reset       time.Time // when the last reset came
	last        uint64
	count       int // durable events seen
	byes        []protocol.Code
	fail        error
}

func newProcMember(t *testing.T, roomName string, urls []string) *procMember {
	t.Helper()
	m := &procMember{room: roomName, hist: histcheck.NewHistory(), leaves: map[string]time.Time{}}
	var err error
	m.Member, err = histcheck.NewMember(histcheck.MemberConfig{
		Name: "member", URLs: urls, Rooms: []string{roomName}, History: m.hist, Record: true,
		OnFrame: m.frame,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// frame notes when each pres leave comes.
func (m *procMember) frame(f *protocol.Frame) {
	if f.T != protocol.TypePres || f.Leave.IsNil() {
		return
	}
	var gone []string
	_ = msgpack.Unmarshal(f.Leave, &gone)
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range gone {
		if _, ok := m.leaves[c]; !ok {
			m.leaves[c] = now
		}
	}
}

// okStats is stats, ending the test if the member (number i of room r)
// failed.
func (m *procMember) okStats(t *testing.T, r string, i int) procMemberStats {
	t.Helper()
	st := m.stats()
	if st.fail != nil {
		t.Fatalf("%s member %d: %v", r, i, st.fail)
	}
	return st
}

// stats reads the member's position and history.
// lastEvents describes the member's last n recorded events.
func (m *procMember) lastEvents(n int) string {
	evs := m.hist.Events()
	var out []string
	for _, e := range evs[max(0, len(evs)-n):] {
		out = append(out, fmt.Sprintf("%+v", e))
	}
	return strings.Join(out, "; ")
}

func (m *procMember) stats() procMemberStats {
	st := procMemberStats{node: m.Node(), fail: m.Err()}
	st.epoch, st.last, _ = m.Position(m.room)
	joined := false
	for _, e := range m.hist.Events() {
		switch {
		case e.Op == histcheck.OpDeliver:
			st.count++
		case e.Op == histcheck.OpJoined && e.Reset:
			if joined {
				st.resets++
				st.reset = e.At
			}
			joined = true
		case e.Op == histcheck.OpLeft && e.Room == "":
			if !slices.Contains(st.byes, e.Code) {
				st.byes = append(st.byes, e.Code)
			}
		case e.Op == histcheck.OpLeft && e.Code != protocol.CodeRoomMoved && st.fail == nil:
			st.fail = fmt.Errorf("%s: left with code %d %s", m.room, e.Code, e.Err)
		}
	}
	if st.fail == nil {
		rep := m.hist.CheckRoom(m.room)
		for _, a := range []string{histcheck.AnomalyGaps, histcheck.AnomalyReorders, histcheck.AnomalyDuplicates, histcheck.AnomalyDivergent} {
			if rep.Count(a) > 0 {
				st.fail = fmt.Errorf("%s: %s: %v", m.room, a, rep.Examples[a])
			}
		}
	}
	return st
}

func (m *procMember) epochNow() string { return m.stats().epoch }
func (m *procMember) nodeName() string { return m.Node() }
func (m *procMember) connID() string   { return m.ConnID() }

func (m *procMember) leftAt(conn string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.leaves[conn]
	return at, ok
}

// procPublish publishes into each member's room in turn, every 10 ms, from
// that member's connection, with idempotency keys, until ctx ends.
func procPublish(ctx context.Context, pubs []*procMember) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m := pubs[i%len(pubs)]
		m.Publish(m.room, fmt.Sprintf("m%d", i))
	}
}

// waitProgress waits until every member has seen n more durable events.
func waitProgress(t *testing.T, members map[string][]*procMember, n int) {
	t.Helper()
	from := map[*procMember]int{}
	for _, ms := range members {
		for _, m := range ms {
			from[m] = m.stats().count
		}
	}
	checkFor(t, 20*time.Second, func() error {
		for r, ms := range members {
			for i, m := range ms {
				if st := m.okStats(t, r, i); st.count-from[m] < n {
					return fmt.Errorf("%s member %d (%s) has seen %d new events of %d (on %s, epoch %s, last %d; its last events: %s)",
						r, i, m.ConnID(), st.count-from[m], n, st.node, st.epoch, st.last, m.lastEvents(5))
				}
			}
		}
		return nil
	})
}

// settleMembers waits until the members of each room agree on its epoch
// and last seq, once publishing has stopped.
func settleMembers(t *testing.T, members map[string][]*procMember) {
	t.Helper()
	checkFor(t, 15*time.Second, func() error {
		for r, ms := range members {
			first := ms[0].stats()
			for i, m := range ms[1:] {
				st := m.okStats(t, r, i+1)
				if st.epoch != first.epoch || st.last != first.last {
					return fmt.Errorf("%s member %d is at %s/%d, member 0 at %s/%d", r, i+1, st.epoch, st.last, first.epoch, first.last)
				}
			}
		}
		return nil
	})
}
