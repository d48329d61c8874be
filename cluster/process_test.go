package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
)

// Tests of a cluster of real roomd processes: the binary built from this
// tree, three nodes on loopback joined by gossip, clients on each, then one
// node crashes (SIGKILL) or leaves (SIGTERM).

const procSecret = "process-test-cluster-secret-0123456789"

// procHTTP talks to the nodes' HTTP APIs without keeping connections.
var procHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds roomd and runs real processes")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build roomd with")
	}
	bin := filepath.Join(t.TempDir(), "roomd")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/roomd/roomd/cmd/roomd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build roomd with")
	}
	bin := filepath.Join(t.TempDir(), "roomd")
	if out, err := exec.Command(gobin, "build", "-o", bin, "github.com/roomd/roomd/cmd/roomd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var all []time.Duration
	for run := 0; run < 3; run++ {
		nodes := startProcCluster(t, bin, fmt.Sprintf("dflt%d", run), false)
		victim := nodes[2]
		start := time.Now()
		victim.kill()
		all = append(all, waitDead(t, nodes[:2], victim.name, start, 60*time.Second)...)
		for _, n := range nodes {
			n.kill()
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
	nodes := startProcCluster(t, bin, "crash", true)
	victim := nodes[2]
	lost, kept := procRooms(t, nodes, victim.name)
	t.Logf("room %s is led by %s (the victim), room %s by another node", lost, victim.name, kept)

	// The publisher is a member on the first node, which survives.
	members, stopPub, epochs := procLoad(t, nodes, lost, kept)
	victimConn := members[kept][2].connID()
	start := time.Now()
	victim.kill()

	dead := waitDead(t, nodes[:2], victim.name, start, 10*time.Second)
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
			if st.node == victim.name {
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
	nodes := startProcCluster(t, bin, "leave", true)
	victim := nodes[2]
	moved, kept := procRooms(t, nodes, victim.name)

	members, stopPub, epochs := procLoad(t, nodes, moved, kept)

	start := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit within 20 s of SIGTERM", victim.name)
	}
	t.Logf("SIGTERM -> exit: %v", time.Since(start))
	if victim.err != nil {
		t.Errorf("%s exited with %v after SIGTERM", victim.name, victim.err)
	}
	logs := victim.logs.String()
	last := -1
	for _, msg := range []string{`"msg":"draining`, `"msg":"rooms handed over"`, `"msg":"shutting down"`, `"msg":"leaving the cluster"`, `"msg":"stopped"`} {
		i := strings.Index(logs, msg)
		if i < 0 || i < last {
			t.Errorf("%s's log lacks %s, or has it out of order", victim.name, msg)
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
			if st.node == victim.name {
				t.Errorf("%s member %d is still on the stopped node", r, i)
			}
		}
	}
}

// procNode is one roomd process.
type procNode struct {
	t      *testing.T
	name   string
	url    string
	gossip string
	cmd    *exec.Cmd
	logs   *procLog
	exited chan struct{}
	err    error // the exit status, once exited
}

// procLog keeps a process's output.
type procLog struct{ testutil.SyncBuffer }

// record returns the first JSON log record whose msg is msg.
func (l *procLog) record(msg string) (map[string]any, bool) {
	for _, line := range strings.Split(l.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// startProc starts a node on loopback ports it picks itself, and waits
// until it has logged where it listens and gossips.
func startProc(t *testing.T, bin, name string, fast bool, seeds ...string) *procNode {
	t.Helper()
	args := []string{"serve",
		"--addr", "127.0.0.1:0",
		"--node-name", name,
		"--cluster-bind", "127.0.0.1:0",
		"--cluster-label", "process-test",
		"--log-format", "json",
		"--shutdown-grace", "5s",
		"--frame-rate", "10000",
		// A grace far longer than the bound below: a dead node's members
		// must leave when it is declared dead, not when their grace ends
		// (its killed sockets reset before the declaration).
		"--presence-grace", "30s",
	}
	if fast {
		args = append(args, "--cluster-fast")
	}
	if len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	n := &procNode{t: t, name: name, logs: &procLog{}, exited: make(chan struct{})}
	n.cmd = exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOMD_") {
			n.cmd.Env = append(n.cmd.Env, kv)
		}
	}
	n.cmd.Env = append(n.cmd.Env, "ROOMD_CLUSTER_SECRET="+procSecret)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			out := n.logs.String()
			t.Logf("%s's log (last 6000 bytes):\n%s", n.name, out[max(0, len(out)-6000):])
		}
	})
	checkFor(t, 15*time.Second, func() error {
		select {
		case <-n.exited:
			t.Fatalf("%s exited at start: %v\n%s", name, n.err, n.logs)
		default:
		}
		ls, ok1 := n.logs.record("listening")
		cm, ok2 := n.logs.record("cluster member")
		if !ok1 || !ok2 {
			return errors.New(name + " has not logged its addresses yet")
		}
		n.url = "http://" + fmt.Sprint(ls["addr"])
		n.gossip = fmt.Sprint(cm["gossip"])
		return nil
	})
	return n
}

// kill ends the process with SIGKILL, if it still runs, and waits for it.
func (n *procNode) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// procClusterView is GET /v1/cluster.
type procClusterView struct {
	Node    string
	Members []cluster.NodeInfo
}

func (n *procNode) clusterView() (procClusterView, error) {
	var v procClusterView
	resp, err := procHTTP.Get(n.url + "/v1/cluster")
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("GET /v1/cluster: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// startProcCluster starts three nodes that join through the first, and
// waits until each sees all three alive with the same placement.
func startProcCluster(t *testing.T, bin, prefix string, fast bool) []*procNode {
	t.Helper()
	first := startProc(t, bin, prefix+"-a", fast)
	nodes := []*procNode{first,
		startProc(t, bin, prefix+"-b", fast, first.gossip),
		startProc(t, bin, prefix+"-c", fast, first.gossip)}
	checkFor(t, 20*time.Second, func() error {
		var want []int
		for _, n := range nodes {
			v, err := n.clusterView()
			if err != nil {
				return err
			}
			var parts []int
			for _, m := range v.Members {
				if m.State != "alive" {
					return fmt.Errorf("%s sees %s %s", n.name, m.Name, m.State)
				}
				parts = append(parts, m.Partitions)
			}
			if len(v.Members) != len(nodes) {
				return fmt.Errorf("%s sees %d members", n.name, len(v.Members))
			}
			for _, m := range v.Members {
				if m.Self && !m.Settled {
					return fmt.Errorf("%s has groups not yet replicated", n.name)
				}
			}
			if want == nil {
				want = parts
			} else if !slices.Equal(parts, want) {
				return fmt.Errorf("%s has another placement: %v, not %v", n.name, parts, want)
			}
		}
		return nil
	})
	return nodes
}

// procRooms picks a room that the victim owns and one that another node

// procLoad starts a member of each room on every node and a publisher
// through the first node's members, and waits until 20 messages went
// through; it returns the members, a stop for the publisher, and each
// room's epoch at that point. Everything stops when the test ends.
func procLoad(t *testing.T, nodes []*procNode, rooms ...string) (map[string][]*procMember, context.CancelFunc, map[string]string) {
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
			m := newProcMember(t, r, procURLs(nodes, i))
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
func procRooms(t *testing.T, nodes []*procNode, victim string) (owned, other string) {
	t.Helper()
	var names []string
	for _, n := range nodes {
		names = append(names, n.name)
	}
	table := cluster.NewTable(names, cluster.DefaultPartitions, 0)
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

// procURLs lists the nodes' URLs starting at node first.
func procURLs(nodes []*procNode, first int) []string {
	var out []string
	for i := range nodes {
		out = append(out, nodes[(first+i)%len(nodes)].url)
	}
	return out
}

// waitDead polls the nodes' /v1/cluster until each says name is dead, and
// returns how long after start each did.
func waitDead(t *testing.T, nodes []*procNode, name string, start time.Time, timeout time.Duration) []time.Duration {
	t.Helper()
	seen := make([]time.Duration, len(nodes))
	checkFor(t, timeout, func() error {
		for i, n := range nodes {
			if seen[i] != 0 {
				continue
			}
			v, err := n.clusterView()
			if err != nil {
				return err
			}
			for _, m := range v.Members {
				if m.Name == name && m.State == "dead" {
					seen[i] = time.Since(start)
				}
			}
			if seen[i] == 0 {
				return fmt.Errorf("%s does not say %s is dead", n.name, name)
			}
		}
		return nil
	})
	return seen
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
