package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/client"
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
// another node and resume. The room it owned restarts with a new epoch and
// every member gets reset; the other room keeps its epoch; no member ever
// sees a gap within an epoch.
func testProcessCrash(t *testing.T, bin string) {
	nodes := proctest.StartCluster(t, proctest.Options{Bin: bin, Fast: true}, "crash", 3)
	victim := nodes[2]
	lost, kept := procRooms(t, nodes, victim.Name)
	t.Logf("room %s is owned by %s (the victim), room %s by another node", lost, victim.Name, kept)

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
		m.mu.Lock()
		if !m.reset.IsZero() {
			resets = append(resets, m.reset.Sub(start).Round(time.Millisecond))
		}
		m.mu.Unlock()
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
			switch r {
			case lost:
				if st.epoch == epochs[r] || st.resets == 0 {
					t.Errorf("%s member %d: epoch %q (was %q), %d resets: a room lost with its owner must restart with a new epoch and reset its members", r, i, st.epoch, epochs[r], st.resets)
				}
			case kept:
				if st.epoch != epochs[r] || st.resets != 0 {
					t.Errorf("%s member %d: epoch %q (was %q), %d resets: a room whose owner lives keeps its epoch", r, i, st.epoch, epochs[r], st.resets)
				}
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

// procRooms picks a room that the victim owns and one that another node

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
			go func() { defer wg.Done(); m.run(ctx) }()
		}
		pubs = append(pubs, members[r][0])
	}
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

// owns, by the placement every node computes.
func procRooms(t *testing.T, nodes []*proctest.Node, victim string) (owned, other string) {
	t.Helper()
	table := cluster.NewTable(proctest.Names(nodes), cluster.DefaultPartitions, 0)
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

// procMember is a client that stays in one room across reconnects, as the
// SDK does: after a lost connection or a bye it connects to the next URL
// with its previous connection id and re-joins with since; after left
// room_moved it re-joins. It checks that durable events come gapless within
// an epoch, and that an epoch changes only with reset.
type procMember struct {
	t    *testing.T
	room string
	urls []string
	next int

	mu     sync.Mutex
	conn   *client.Conn
	id     string // connection id
	node   string // the node of the current connection
	epoch  string
	last   uint64 // last seq seen in epoch
	count  int    // durable events seen
	resets int
	reset  time.Time // when the last reset came
	byes   []protocol.Code
	leaves map[string]time.Time // connection id -> when its pres leave came
	fail   error
}

type procMemberStats struct {
	node, epoch string
	resets      int
	last        uint64
	byes        []protocol.Code
	fail        error
}

func newProcMember(t *testing.T, roomName string, urls []string) *procMember {
	t.Helper()
	m := &procMember{t: t, room: roomName, urls: urls, leaves: map[string]time.Time{}}
	if err := m.connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
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

func (m *procMember) stats() procMemberStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return procMemberStats{node: m.node, epoch: m.epoch, resets: m.resets, last: m.last, byes: slices.Clone(m.byes), fail: m.fail}
}

func (m *procMember) epochNow() string { return m.stats().epoch }
func (m *procMember) nodeName() string { return m.stats().node }

func (m *procMember) connID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

func (m *procMember) leftAt(conn string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.leaves[conn]
	return at, ok
}

func (m *procMember) failf(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail == nil {
		m.fail = fmt.Errorf("%s: "+format, append([]any{m.room}, args...)...)
	}
}

// send sends a frame on the current connection.
func (m *procMember) send(f client.M) {
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	_ = c.Send(f)
}

// connect dials the URLs in turn, from the next one, until one takes the
// hello and the join, for up to 15 s.
func (m *procMember) connect(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		url := m.urls[m.next%len(m.urls)]
		m.next++
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var c *client.Conn
		c, _, err = client.Dial(dctx, url, nil)
		if err == nil {
			extra := client.M{}
			if id := m.connID(); id != "" {
				extra["c"] = id
			}
			if err = c.Hello(dctx, "", extra); err == nil {
				m.mu.Lock()
				m.conn, m.id, m.node = c, c.Welcome.C, c.Welcome.N
				m.mu.Unlock()
				err = m.join(dctx)
			}
			if err != nil {
				_ = c.Close()
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: no node took the connection: %w", m.room, err)
}

// join joins the room, with since when the member has seen an epoch.
func (m *procMember) join(ctx context.Context) error {
	j := client.M{"t": "join", "id": 1, "r": m.room}
	m.mu.Lock()
	c := m.conn
	if m.epoch != "" {
		j["since"] = client.M{"e": m.epoch, "s": m.last}
	}
	m.mu.Unlock()
	if err := c.Send(j); err != nil {
		return err
	}
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return err
		}
		switch {
		case f.T == protocol.TypeErr && f.ID == 1:
			return protocol.NewError(f.Code, f.Msg)
		case f.T == protocol.TypeJoined:
			return m.joined(f)
		}
	}
}

// joined takes a joined answer in: a reset starts the epoch over at its
// seq; a resume must continue exactly after the last seq seen.
func (m *procMember) joined(f *protocol.Frame) error {
	log, err := client.Log(f.Log)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case f.Reset:
		if m.epoch != "" {
			m.resets++
			m.reset = time.Now()
		}
		m.epoch, m.last = f.E, f.S
		return nil
	case m.epoch != "" && f.E != m.epoch:
		m.fail = fmt.Errorf("%s: the epoch changed from %s to %s without reset", m.room, m.epoch, f.E)
		return m.fail
	}
	m.epoch = f.E
	for i := range log {
		m.recordLocked(&log[i])
	}
	if m.last != f.S && m.fail == nil {
		m.fail = fmt.Errorf("%s: resumed at seq %d, but the room is at %d", m.room, m.last, f.S)
	}
	return nil
}

// recordLocked takes a durable event in. m.mu is held.
func (m *procMember) recordLocked(f *protocol.Frame) {
	if f.T != protocol.TypeMsg && f.T != protocol.TypeState {
		return
	}
	if f.S != m.last+1 && m.fail == nil {
		m.fail = fmt.Errorf("%s: seq %d after %d in epoch %s: a gap", m.room, f.S, m.last, m.epoch)
	}
	m.last = f.S
	m.count++
}

// run reads until ctx ends, reconnecting when the connection ends.
func (m *procMember) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		c := m.conn
		m.mu.Unlock()
		_ = c.Close()
	})
	defer stop()
	for ctx.Err() == nil {
		m.mu.Lock()
		c := m.conn
		m.mu.Unlock()
		f, err := c.Next(ctx)
		if err != nil {
			_ = c.Close()
			if ctx.Err() != nil {
				return
			}
			var ce *client.CloseError
			if errors.As(err, &ce) && ce.Code >= 4000 && ce.Code < 5000 {
				m.mu.Lock()
				if !slices.Contains(m.byes, protocol.Code(ce.Code-4000)) {
					m.byes = append(m.byes, protocol.Code(ce.Code-4000))
				}
				m.mu.Unlock()
			}
			if cerr := m.connect(ctx); cerr != nil {
				if ctx.Err() == nil {
					m.failf("reconnect: %v (after %v)", cerr, err)
				}
				return
			}
			continue
		}
		switch f.T {
		case protocol.TypeMsg, protocol.TypeState:
			m.mu.Lock()
			m.recordLocked(f)
			m.mu.Unlock()
		case protocol.TypeBye:
			m.mu.Lock()
			m.byes = append(m.byes, f.Code)
			m.mu.Unlock()
		case protocol.TypePres:
			var gone []string
			if !f.Leave.IsNil() {
				_ = msgpack.Unmarshal(f.Leave, &gone)
			}
			now := time.Now()
			m.mu.Lock()
			for _, c := range gone {
				if _, ok := m.leaves[c]; !ok {
					m.leaves[c] = now
				}
			}
			m.mu.Unlock()
		case protocol.TypeLeft:
			if f.Code != protocol.CodeRoomMoved {
				m.failf("left with code %d %s", f.Code, f.Msg)
				return
			}
			jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := m.join(jctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				m.failf("re-join after left room_moved: %v", err)
				return
			}
		}
	}
}

// procPublish publishes into each member's room in turn, every 10 ms, from
// that member's connection, until ctx ends.
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
		m.send(client.M{"t": "pub", "r": m.room, "d": fmt.Sprintf("m%d", i)})
	}
}

// waitProgress waits until every member has seen n more durable events.
func waitProgress(t *testing.T, members map[string][]*procMember, n int) {
	t.Helper()
	from := map[*procMember]int{}
	for _, ms := range members {
		for _, m := range ms {
			m.mu.Lock()
			from[m] = m.count
			m.mu.Unlock()
		}
	}
	checkFor(t, 20*time.Second, func() error {
		for r, ms := range members {
			for i, m := range ms {
				m.okStats(t, r, i)
				m.mu.Lock()
				got := m.count - from[m]
				m.mu.Unlock()
				if got < n {
					return fmt.Errorf("%s member %d has seen %d new events of %d", r, i, got, n)
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
