package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
)

// node is one roomd node in this process: real listeners on loopback,
// real memberlist gossip (fast timings), real peer links.
type node struct {
	metrics *countingMetrics
	faults  *cluster.Faults
	name    string
	rooms   *room.Manager
	cl      *cluster.Cluster
	srv     *server.Server
	URL     string
	hooks   *hooks.Hooks // nil: no hooks
	errc    chan error
	once    sync.Once
}

func startNode(t *testing.T, name string, seeds ...string) *node {
	t.Helper()
	return startNodeWith(t, name, nodeOpts{}, seeds...)
}

// nodeOpts are a node's deviations from the test cluster's settings.
type nodeOpts struct {
	secret string // "" means testSecret
	key    []byte // explicit gossip key; nil means derived from the secret
	// hooksURL, when set, sends the published, occupied and vacated hooks
	// of every room there.
	hooksURL string
}

const testSecret = "test-cluster-secret"

func startNodeWith(t *testing.T, name string, opts nodeOpts, seeds ...string) *node {
	t.Helper()
	if opts.secret == "" {
		opts.secret = testSecret
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("ROOMD_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	}
	metrics := &countingMetrics{}
	faults := cluster.NewFaults()
	rooms, err := room.New(room.Config{PresenceGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var hk *hooks.Hooks
	if opts.hooksURL != "" {
		hk = newTestHooks(t, opts.hooksURL, logger)
	}
	cl, err := cluster.New(cluster.Config{
		Rooms: rooms, Node: name, HTTPAddr: ln.Addr().String(), Secret: []byte(opts.secret),
		Gossip: &cluster.MembershipConfig{BindAddr: "127.0.0.1:0", Join: seeds, Fast: true, Label: "test", Key: opts.key},
		Logger: logger, Metrics: metrics, Faults: faults, Hooks: hk,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Router: cl, NodeName: name, Logger: logger,
		FrameRate: 100000, FrameBurst: 100000, ByteRate: 1 << 30, QueueMaxBytes: 16 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{metrics: metrics, faults: faults, name: name, rooms: rooms, cl: cl, srv: srv, hooks: hk, URL: "http://" + ln.Addr().String(), errc: make(chan error, 1)}
	go func() { n.errc <- srv.Serve(ln) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop shuts the node down the hard way (no handoff), as a crash would look
// to the others except that its sockets close.
func (n *node) stop(t *testing.T) {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
		<-n.errc
		_ = n.cl.Shutdown(ctx)
		_ = n.hooks.Close(ctx)
		n.rooms.Close()
	})
}

// drain is a graceful leave: hand the rooms over, then bye to the clients.
func (n *node) drain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.cl.Drain(ctx); err != nil {
		t.Errorf("drain %s: %v", n.name, err)
	}
	n.stop(t)
}

// startCluster starts n nodes that join through the first and waits until
// every node sees the same placement.
func startCluster(t *testing.T, count int) []*node {
	t.Helper()
	first := startNode(t, "node-0")
	nodes := []*node{first}
	for i := 1; i < count; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("node-%d", i), first.cl.GossipAddr()))
	}
	waitConverged(t, nodes...)
	return nodes
}

// waitConverged waits until the given nodes all see exactly them, serving,
// with one placement. The bound is generous: under the race detector with
// every package's tests sharing two cores, handoffs have taken over 15 s.
func waitConverged(t *testing.T, nodes ...*node) {
	t.Helper()
	checkFor(t, 45*time.Second, func() error {
		v := nodes[0].cl.Placement().Version()
		for _, n := range nodes {
			p := n.cl.Placement()
			if got := len(p.Members()); got != len(nodes) {
				return fmt.Errorf("%s sees %d serving members", n.name, got)
			}
			if p.Version() != v {
				return fmt.Errorf("%s has another placement", n.name)
			}
			if !n.cl.Settled() {
				var states []string
				if p := cluster.StuckPartition(n.cl); p >= 0 {
					for _, o := range nodes {
						states = append(states, cluster.GroupState(o.cl, p))
					}
				}
				return fmt.Errorf("%s is not settled: %s\n%s", n.name, cluster.Unsettled(n.cl), strings.Join(states, "\n"))
			}
		}
		return nil
	})
}

// wsMember is a client that stays in one room across reconnects: when its
// connection ends it connects to the next URL and re-joins with since, as
// the SDK does, and checks that what it sees stays gapless and in order.
type wsMember struct {
	t      *testing.T
	room   string
	urls   []string
	next   int
	conn   *client.Conn
	id     string // connection id, kept across reconnects
	mu     sync.Mutex
	epoch  string
	seqs   []uint64
	data   []string
	resets int
	fail   error
}

func newMember(t *testing.T, roomName string, urls ...string) *wsMember {
	m := &wsMember{t: t, room: roomName, urls: urls}
	if err := m.connect(); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *wsMember) connect() error {
	var err error
	for tries := 0; tries < 3*len(m.urls); tries++ {
		url := m.urls[m.next%len(m.urls)]
		m.next++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, derr := client.Dial(ctx, url, nil)
		cancel()
		if derr != nil {
			err = derr
			time.Sleep(50 * time.Millisecond)
			continue
		}
		m.mu.Lock()
		m.conn = c
		m.mu.Unlock()
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		extra := client.M{}
		if m.id != "" {
			extra["c"] = m.id
		}
		err = c.Hello(ctx, "", extra)
		if err == nil {
			m.id = c.Welcome.C
			err = m.join(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		_ = c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func (m *wsMember) join(ctx context.Context) error {
	j := client.M{"t": "join", "id": 1, "r": m.room}
	m.mu.Lock()
	resuming := m.epoch != ""
	if resuming {
		var last uint64
		if n := len(m.seqs); n > 0 {
			last = m.seqs[n-1]
		}
		j["since"] = client.M{"e": m.epoch, "s": last}
	}
	m.mu.Unlock()
	if err := m.conn.Send(j); err != nil {
		return err
	}
	for {
		f, err := m.conn.Next(ctx)
		if err != nil {
			return err
		}
		switch f.T {
		case protocol.TypeErr:
			return protocol.NewError(f.Code, f.Msg)
		case protocol.TypeJoined:
			log, err := client.Log(f.Log)
			if err != nil {
				return err
			}
			m.mu.Lock()
			if f.Reset && resuming {
				m.resets++
				m.seqs, m.data = nil, nil // a new epoch: seqs start over
			}
			m.epoch = f.E
			m.mu.Unlock()
			for i := range log {
				m.record(&log[i])
			}
			return nil
		}
	}
}

func (m *wsMember) record(f *protocol.Frame) {
	if f.T != protocol.TypeMsg {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.seqs); n > 0 && f.S != m.seqs[n-1]+1 && m.fail == nil {
		m.fail = fmt.Errorf("%s: seq %d after %d", m.room, f.S, m.seqs[n-1])
	}
	v, _ := client.Value(f.D)
	m.seqs = append(m.seqs, f.S)
	m.data = append(m.data, fmt.Sprint(v))
}

// run reads until ctx ends, reconnecting when the connection ends.
func (m *wsMember) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		c := m.conn
		m.mu.Unlock()
		_ = c.Close() // wakes the read below
	})
	defer stop()
	for ctx.Err() == nil {
		f, err := m.conn.Next(ctx)
		if err != nil {
			_ = m.conn.Close()
			if ctx.Err() != nil {
				return
			}
			if cerr := m.connect(); cerr != nil {
				m.mu.Lock()
				m.fail = fmt.Errorf("reconnect: %v (after %v)", cerr, err)
				m.mu.Unlock()
				return
			}
			continue
		}
		switch f.T {
		case protocol.TypeMsg:
			m.record(f)
		case protocol.TypeLeft:
			// The room was lost on its owner: re-join, and see reset.
			jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := m.join(jctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				m.mu.Lock()
				m.fail = fmt.Errorf("re-join after left %d: %v", f.Code, err)
				m.mu.Unlock()
				return
			}
		}
	}
}

func (m *wsMember) snapshot() ([]uint64, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint64(nil), m.seqs...), append([]string(nil), m.data...), m.fail
}

func (m *wsMember) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seqs)
}

// apiGet fetches a JSON document from a node's HTTP API.
func apiGet(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

func apiPost(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

// sseEvents reads an SSE stream's events (name, data) into a channel.
func sseEvents(t *testing.T, url string) <-chan [2]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	out := make(chan [2]string, 1024)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				select {
				case out <- [2]string{name, strings.TrimPrefix(line, "data: ")}:
				default:
				}
			}
		}
	}()
	return out
}

// countingMetrics counts what the cluster layer reports.
type countingMetrics struct {
	forwarded, committed, leaderChanges, linksUp, linksDown, oversized atomic.Int64
}

func (m *countingMetrics) Forwarded(string)             { m.forwarded.Add(1) }
func (m *countingMetrics) Committed(time.Duration)      { m.committed.Add(1) }
func (m *countingMetrics) Groups(int, int, int, uint64) {}
func (m *countingMetrics) LeaderChanged()               { m.leaderChanges.Add(1) }
func (m *countingMetrics) LinkUp()                      { m.linksUp.Add(1) }
func (m *countingMetrics) LinkDown()                    { m.linksDown.Add(1) }
func (m *countingMetrics) LinkOversized()               { m.oversized.Add(1) }

// checkFor polls a condition instead of sleeping (internal/testutil).
var checkFor = testutil.CheckFor
