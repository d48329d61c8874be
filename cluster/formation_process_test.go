package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/proctest"
	"github.com/roomd/roomd/protocol"
)

// TestSimultaneousStart starts three roomd processes at the same moment,
// each with --cluster-expect 3 and the two others as seeds, as a
// Kubernetes StatefulSet with parallel pod management does. They must form
// one cluster (one ID, one placement, nothing handed over), and no node may
// serve a room before it has formed: a client on each node keeps trying to
// join from the node's first moment, and its first success must come after
// the node logged that it formed.
//
// One run is part of the tests; for many in a row (20 are the bar):
//
//	ROOMD_SIMULTANEOUS_RUNS=20 go test -run TestSimultaneousStart -v ./cluster/
func TestSimultaneousStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds roomd and runs real processes")
	}
	runs := 1
	if v := os.Getenv("ROOMD_SIMULTANEOUS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ROOMD_SIMULTANEOUS_RUNS=%q: want a count", v)
		}
		runs = n
	}
	bin := proctest.Build(t)
	formed := 0
	for run := range runs {
		if t.Run(fmt.Sprintf("run-%d", run+1), func(t *testing.T) { simultaneousStart(t, bin, run+1, 0) }) {
			formed++
		}
	}
	t.Logf("%d of %d simultaneous starts formed one cluster, and served no room before", formed, runs)
	// The third node a second late: the first two answer joins with
	// unavailable and /readyz with 503 meanwhile.
	t.Run("third-late", func(t *testing.T) { simultaneousStart(t, bin, 0, time.Second) })
}

// simultaneousStart starts three nodes, the third late by lag, and checks
// that they form one cluster and serve no room before.
func simultaneousStart(t *testing.T, bin string, run int, lag time.Duration) {
	addrs, release := formAddrs(t, 3)
	names := []string{fmt.Sprintf("sim%d-a", run), fmt.Sprintf("sim%d-b", run), fmt.Sprintf("sim%d-c", run)}
	for _, r := range release {
		r()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probes := make([]simProbe, 3)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	nodes := make([]*proctest.Node, 3)
	for i := range nodes {
		if i == 2 && lag > 0 {
			checkFor(t, 10*time.Second, func() error {
				for _, n := range nodes[:2] {
					if code, body := simReadyz(n); code != http.StatusServiceUnavailable || body != "forming: 2 of 3 members\n" {
						return fmt.Errorf("%s: /readyz %d %q", n.Name, code, body)
					}
				}
				return nil
			})
			time.Sleep(lag)
		}
		nodes[i] = startSimProc(t, bin, names[i], addrs[i], without(addrs, i))
		// From the node's first moment, a client keeps joining a room there.
		wg.Add(1)
		go func() { defer wg.Done(); probes[i] = probeJoin(ctx, nodes[i], "chat:sim") }()
	}
	wg.Wait()

	// How each node formed, in one line each, for a failure below.
	for _, n := range nodes {
		for _, msg := range []string{"cluster formed: bootstrapped a new cluster", "cluster formed: joined an existing cluster"} {
			if rec, ok := n.Logs.Record(msg); ok {
				t.Logf("%s: %s at %v: cluster %v, members %v", n.Name, msg, rec["time"], rec["cluster_id"], rec["members"])
			}
		}
	}
	var ids []string
	for i, n := range nodes {
		n.WaitListening()
		p := probes[i]
		if p.err != nil {
			t.Fatalf("%s: %v", n.Name, p.err)
		}
		if lag > 0 && i < 2 && p.unavailable == 0 {
			t.Errorf("%s served a join while the third node was not up", n.Name)
		}
		rec, ok := n.Logs.Record("cluster formed: bootstrapped a new cluster")
		if !ok {
			t.Fatalf("%s did not log a bootstrap", n.Name)
		}
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"]))
		if err != nil {
			t.Fatal(err)
		}
		if p.joinedAt.Before(at) {
			t.Errorf("%s served a join at %v, before it formed at %v", n.Name, p.joinedAt.Format(time.StampMicro), at.Format(time.StampMicro))
		}
		if got := fmt.Sprint(rec["members"]); got != fmt.Sprint(names) {
			t.Errorf("%s bootstrapped with %s, want %v", n.Name, got, names)
		}
		ids = append(ids, fmt.Sprint(rec["cluster_id"]))
		if _, ok := n.Logs.Record("replication groups bootstrapped"); !ok {
			t.Errorf("%s formed without bootstrapping its replication groups", n.Name)
		}
		t.Logf("%s: formed %v after start; a join got unavailable %d times, then joined %v after start",
			n.Name, at.Sub(start).Round(time.Millisecond), p.unavailable, p.joinedAt.Sub(start).Round(time.Millisecond))
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("cluster IDs %v: want one", ids)
	}

	// One cluster: each node sees all three alive, with the same placement.
	checkFor(t, 10*time.Second, func() error {
		var want []int
		for _, n := range nodes {
			v, err := n.ClusterView()
			if err != nil {
				return err
			}
			var parts []int
			for _, m := range v.Members {
				if m.State != "alive" {
					return fmt.Errorf("%s sees %s %s", n.Name, m.Name, m.State)
				}
				parts = append(parts, m.Partitions)
			}
			if len(parts) != 3 || want != nil && !slices.Equal(parts, want) {
				return fmt.Errorf("%s sees partitions %v, another node %v", n.Name, parts, want)
			}
			want = parts
		}
		return nil
	})
	for _, n := range nodes {
		n.Kill()
	}
}

// startSimProc starts a node gossiping at bind with expect 3, without
// waiting for it.
func startSimProc(t *testing.T, bin, name, bind string, seeds []string) *proctest.Node {
	t.Helper()
	return proctest.Launch(t, proctest.Options{Bin: bin, Fast: true, Args: []string{"--cluster-expect", "3"}}, name, bind, seeds...)
}

// simProbe is what probeJoin saw.
type simProbe struct {
	unavailable int       // joins answered with unavailable
	joinedAt    time.Time // when a join was answered with joined
	err         error
}

// probeJoin waits for the node to listen, then joins roomName through one
// connection, again and again while it is answered with unavailable,
// until it is joined.
func probeJoin(ctx context.Context, n *proctest.Node, roomName string) simProbe {
	var p simProbe
	url := ""
	for url == "" {
		if rec, ok := n.Logs.Record("listening"); ok {
			url = "http://" + fmt.Sprint(rec["addr"])
			break
		}
		select {
		case <-n.Exited():
			p.err = fmt.Errorf("exited at start: %v", n.ExitErr())
			return p
		case <-ctx.Done():
			p.err = ctx.Err()
			return p
		case <-time.After(time.Millisecond):
		}
	}
	c, _, err := client.Dial(ctx, url, nil)
	if err != nil {
		p.err = err
		return p
	}
	defer c.Close()
	if p.err = c.Hello(ctx, "", nil); p.err != nil {
		return p
	}
	for id := 1; ; id++ {
		if p.err = c.Send(client.M{"t": "join", "id": id, "r": roomName}); p.err != nil {
			return p
		}
		f, err := c.Expect(ctx, protocol.TypeJoined, protocol.TypePres)
		switch {
		case err == nil:
			p.joinedAt = time.Now()
			return p
		case f != nil && f.T == protocol.TypeErr && f.Code == protocol.CodeUnavailable:
			p.unavailable++
		default:
			p.err = fmt.Errorf("join: %v", err)
			return p
		}
		select {
		case <-ctx.Done():
			p.err = fmt.Errorf("not joined: %w", ctx.Err())
			return p
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// simHTTP asks the nodes' HTTP APIs, keeping no connection.
var simHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// simReadyz returns a node's /readyz status and body (0 before it listens).
func simReadyz(n *proctest.Node) (int, string) {
	rec, ok := n.Logs.Record("listening")
	if !ok {
		return 0, ""
	}
	resp, err := simHTTP.Get("http://" + fmt.Sprint(rec["addr"]) + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
