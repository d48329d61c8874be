package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/cluster/membership"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
)

// Formation in one process: nodes on loopback whose gossip addresses are
// known before they start, so that each can have the others as seeds, and
// whose servers answer by the cluster's readiness, as roomd serve wires
// them.

// formNode is a node of these tests, with its logs.
type formNode struct {
	*node
	gossip string
	logs   *testutil.SyncBuffer
}

// startFormNode starts a node gossiping on bind, with expect and seeds.
func startFormNode(t *testing.T, name, bind string, expect int, seeds ...string) *formNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	rooms, err := room.New(room.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.New(cluster.Config{
		Rooms: rooms, Node: name, HTTPAddr: ln.Addr().String(), Secret: []byte("test-cluster-secret"),
		Gossip: &membership.Config{BindAddr: bind, Join: seeds, Fast: true, Label: "test"},
		Expect: expect, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Router: cl, Ready: cl.Ready, NodeName: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{metrics: &countingMetrics{}, name: name, rooms: rooms, cl: cl, srv: srv, URL: "http://" + ln.Addr().String(), errc: make(chan error, 1)}
	go func() { n.errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, logs)
		}
	})
	return &formNode{node: n, gossip: bind, logs: logs}
}

// readyz returns /readyz's status and body.
func (n *formNode) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(n.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dialHello opens a connection to url and says hello, anonymously.
func dialHello(t *testing.T, ctx context.Context, url string) *client.Conn {
	t.Helper()
	c, _, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello(ctx, "", nil); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// tryJoin joins a room through a new connection and returns the error
// code of the answer (0: joined) and how long the answer took.
func (n *formNode) tryJoin(t *testing.T, roomName string) (protocol.Code, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := dialHello(t, ctx, n.URL)
	defer c.Close()
	start := time.Now()
	if err := c.Send(client.M{"t": "join", "id": 1, "r": roomName}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Expect(ctx, protocol.TypeJoined, protocol.TypePres)
	took := time.Since(start)
	switch {
	case err == nil:
		return 0, took
	case f != nil && f.T == protocol.TypeErr:
		return f.Code, took
	}
	t.Fatalf("join %s on %s: %v", roomName, n.name, err)
	return 0, took
}

// formAddrs reserves n gossip addresses; release(i) frees the i-th for its
// node to bind.
func formAddrs(t *testing.T, n int) (addrs []string, release []func()) {
	for range n {
		a, r := testutil.FreeGossipAddr(t)
		addrs, release = append(addrs, a), append(release, r)
	}
	return addrs, release
}

func without(list []string, i int) []string { return slices.Delete(slices.Clone(list), i, i+1) }

// Nodes with expect 3 serve nothing while two of them are up: /readyz is
// 503 with the reason, a join gets unavailable (6) at once, no partition is
// placed; once the third comes up, the three bootstrap one cluster, with
// one ID and nothing handed over, and serve.
func TestFormationExpect(t *testing.T) {
	addrs, release := formAddrs(t, 3)
	var nodes []*formNode
	for i, name := range []string{"fx-a", "fx-b"} {
		release[i]()
		nodes = append(nodes, startFormNode(t, name, addrs[i], 3, without(addrs, i)...))
	}
	checkFor(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if err := n.cl.Ready(); err == nil || err.Error() != "forming: 2 of 3 members" {
				return fmt.Errorf("%s: Ready() = %v", n.name, err)
			}
		}
		return nil
	})
	for _, n := range nodes {
		if code, body := n.readyz(t); code != http.StatusServiceUnavailable || body != "forming: 2 of 3 members\n" {
			t.Errorf("%s: /readyz %d %q while forming", n.name, code, body)
		}
		if code, took := n.tryJoin(t, "chat:early"); code != protocol.CodeUnavailable || took > time.Second {
			t.Errorf("%s: a join while forming got code %d after %v, want %d at once", n.name, code, took, protocol.CodeUnavailable)
		}
		if m := n.cl.Placement().Members(); len(m) != 0 || n.cl.Formed() {
			t.Errorf("%s places rooms on %v (formed %v) while forming", n.name, m, n.cl.Formed())
		}
		if _, _, ok := n.cl.Formation(); ok {
			t.Errorf("%s has a formation while forming", n.name)
		}
		if !errors.Is(n.cl.Ready(), cluster.ErrForming) {
			t.Errorf("%s: Ready() = %v, want ErrForming", n.name, n.cl.Ready())
		}
	}

	release[2]()
	nodes = append(nodes, startFormNode(t, "fx-c", addrs[2], 3, without(addrs, 2)...))
	checkFor(t, 20*time.Second, func() error {
		for _, n := range nodes {
			members, boot, ok := n.cl.Formation()
			if !ok || !boot || !slices.Equal(members, []string{"fx-a", "fx-b", "fx-c"}) {
				return fmt.Errorf("%s: formation %v %v %v", n.name, members, boot, ok)
			}
			if n.cl.ClusterID() == "" || n.cl.ClusterID() != nodes[0].cl.ClusterID() {
				return fmt.Errorf("%s: cluster ID %q, %s has %q", n.name, n.cl.ClusterID(), nodes[0].name, nodes[0].cl.ClusterID())
			}
		}
		return nil
	})
	waitConverged(t, nodes[0].node, nodes[1].node, nodes[2].node)
	for _, n := range nodes {
		select {
		case <-n.cl.FormedC():
		default:
			t.Errorf("%s: FormedC is open once formed", n.name)
		}
		if code, body := n.readyz(t); code != http.StatusOK {
			t.Errorf("%s: /readyz %d %q once formed", n.name, code, body)
		}
		if v := apiGet(t, n.URL+"/v1/cluster"); v["cluster_id"] != n.cl.ClusterID() || v["formation"] != "formed" {
			t.Errorf("%s: /v1/cluster says %v, %v; want ID %s, formed", n.name, v["cluster_id"], v["formation"], n.cl.ClusterID())
		}
		if code, _ := n.tryJoin(t, "chat:"+n.name); code != 0 {
			t.Errorf("%s: a join once formed got code %d", n.name, code)
		}
		if logs := n.logs.String(); !strings.Contains(logs, "cluster formed: bootstrapped a new cluster") || strings.Contains(logs, "handoff") {
			t.Errorf("%s: want a bootstrap and no handoff in the logs:\n%s", n.name, logs)
		}
	}
}

// Nodes with seeds and no expect never bootstrap, not even together: they
// wait, serving nothing, until a node of a formed cluster (here one that
// started alone) comes up among their seeds, and then join it.
func TestFormationSeedsWithoutExpect(t *testing.T) {
	addrs, release := formAddrs(t, 3)
	x := addrs[2] // the seed that comes up last
	release[0]()
	a := startFormNode(t, "sw-a", addrs[0], 0, x)
	release[1]()
	b := startFormNode(t, "sw-b", addrs[1], 0, x, addrs[0])
	checkFor(t, 10*time.Second, func() error {
		if got := len(a.cl.Members(context.Background())); got != 2 {
			return fmt.Errorf("sw-a sees %d nodes", got)
		}
		return nil
	})
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for _, n := range []*formNode{a, b} {
			if n.cl.Formed() || len(n.cl.Placement().Members()) > 0 || n.cl.ClusterID() != "" {
				t.Fatalf("%s formed without a formed cluster to join", n.name)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := a.readyz(t); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "joining: ") {
		t.Errorf("sw-a: /readyz %d %q while joining", code, body)
	}
	if code, _ := b.tryJoin(t, "chat:early"); code != protocol.CodeUnavailable {
		t.Errorf("sw-b: a join while joining got code %d", code)
	}
	// One joins the formed cluster below. (Two joining at the same moment
	// race in today's handoff: each may wait for the other to hand over
	// partitions neither owned.)
	b.stop(t)

	release[2]()
	alone := startFormNode(t, "sw-x", x, 0)
	checkFor(t, 20*time.Second, func() error {
		members, boot, ok := a.cl.Formation()
		if !ok || boot || !slices.Equal(members, []string{"sw-a", "sw-x"}) || a.cl.ClusterID() != alone.cl.ClusterID() {
			return fmt.Errorf("sw-a: formation %v %v %v, ID %q (sw-x's %q)", members, boot, ok, a.cl.ClusterID(), alone.cl.ClusterID())
		}
		return nil
	})
	if members, boot, ok := alone.cl.Formation(); !ok || !boot || !slices.Equal(members, []string{"sw-x"}) {
		t.Errorf("sw-x: formation %v %v %v, want a bootstrap alone", members, boot, ok)
	}
	waitConverged(t, alone.node, a.node)
}

// Two clusters that formed apart (each bootstrapped alone here, expect 1)
// never merge when one's seeds lead to the other: both refuse, and say
// why in their logs.
func TestFormationRefusesAnotherCluster(t *testing.T) {
	addrs, release := formAddrs(t, 2)
	release[0]()
	y := startFormNode(t, "other-y", addrs[0], 1, addrs[1]) // forms alone, then finds x
	checkFor(t, 10*time.Second, func() error {
		if !y.cl.Formed() {
			return errors.New("other-y has not formed")
		}
		return nil
	})
	release[1]()
	x := startFormNode(t, "other-x", addrs[1], 0)
	checkFor(t, 10*time.Second, func() error {
		if !x.cl.Formed() {
			return errors.New("other-x has not formed")
		}
		for _, n := range []*formNode{x, y} {
			if !strings.Contains(n.logs.String(), "refusing a node of another cluster") {
				return fmt.Errorf("%s has not refused the other", n.name)
			}
		}
		return nil
	})
	if x.cl.ClusterID() == y.cl.ClusterID() {
		t.Fatalf("both clusters have ID %q", x.cl.ClusterID())
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for _, n := range []*formNode{x, y} {
			if got := n.cl.Placement().Members(); !slices.Equal(got, []string{n.name}) {
				t.Fatalf("%s places rooms on %v: the clusters merged", n.name, got)
			}
			if got := n.cl.Members(context.Background()); len(got) != 1 {
				t.Fatalf("%s's membership lists %v: the clusters merged", n.name, got)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range []*formNode{x, y} {
		if !strings.Contains(n.logs.String(), "cluster_id="+n.cl.ClusterID()) {
			t.Errorf("%s's refusal does not name its cluster ID:\n%s", n.name, n.logs)
		}
	}
}
