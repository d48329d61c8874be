package cluster_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster/placement"
	"github.com/roomd/roomd/internal/histcheck"
	"github.com/roomd/roomd/internal/proctest"
)

// Fault scenarios on real processes, judged by the history checker: three
// nodes, publishers with idempotency keys and subscribers on every node
// that resume with since, then a fault; at the end every subscriber
// re-joins with since and reads to the end, each node's HTTP API gives
// each room's history, and every count of internal/histcheck must be 0.
//
// They run in every `go test` of the package:
//
//	go test -run 'TestHistory' -v ./cluster/

// histOptions: fast failure detection, a ping every second (so clients
// of a frozen node notice within the members' 3 s of silence), and a
// history long enough to hold a whole run.
//
// ROOMD_DEFAULT_TIMINGS=1 runs them with the default failure detection and
// raft timings instead of --cluster-fast (to measure those).
func histOptions(bin string) proctest.Options {
	return proctest.Options{Bin: bin, Fast: os.Getenv("ROOMD_DEFAULT_TIMINGS") == "",
		Args: []string{"--ping-interval", "1s", "--history-size", "100000"}}
}

// histRooms picks n rooms that victim owns and n that other nodes own, by
// the placement every node computes, and the owner of the first of those.
func histRooms(nodes []*proctest.Node, victim string, n int) (owned, others []string, otherOwner string) {
	table := placement.NewTable(proctest.Names(nodes), placement.DefaultPartitions, 0)
	for i := 0; len(owned) < n || len(others) < n; i++ {
		r := fmt.Sprintf("hist:room-%d", i)
		switch _, o := table.OwnerOf(r); {
		case o == victim && len(owned) < n:
			owned = append(owned, r)
		case o != victim && len(others) < n:
			if otherOwner == "" {
				otherOwner = o
			}
			others = append(others, r)
		}
	}
	return owned, others, otherOwner
}

// histRun is a scenario's cluster and workload.
type histRun struct {
	nodes  []*proctest.Node
	victim *proctest.Node // the last node, owner of rooms owned
	owned  []string       // rooms the victim owns
	others []string       // rooms other nodes own
	second string         // the owner of others[0]
	load   *histcheck.Load
}

// startHistRun starts three nodes and the workload over two rooms that
// the third node owns and two that others own: two publishers at 100
// msg/s each, one subscriber per node; it waits until 100 publishes were
// acknowledged.
func startHistRun(t *testing.T, prefix string) *histRun {
	t.Helper()
	bin := proctest.Build(t)
	h := &histRun{nodes: proctest.StartCluster(t, histOptions(bin), prefix, 3)}
	h.victim = h.nodes[2]
	h.owned, h.others, h.second = histRooms(h.nodes, h.victim.Name, 2)
	t.Logf("rooms %v are owned by %s, %v by others (the first by %s)", h.owned, h.victim.Name, h.others, h.second)
	l, err := histcheck.Start(histcheck.LoadConfig{
		URLs: proctest.URLs(h.nodes, 0), Rooms: append(slices.Clone(h.owned), h.others...),
		Publishers: 2, Subscribers: len(h.nodes), Rate: 100,
		Silence: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	h.load = l
	if !progress(t, l, 100) {
		t.FailNow()
	}
	return h
}

// progress waits until n more publishes were acknowledged, and reports
// whether they were, within 15 s.
func progress(t *testing.T, l *histcheck.Load, n int) bool {
	t.Helper()
	start := time.Now()
	if err := l.WaitAcked(l.Acked()+n, 15*time.Second); err != nil {
		t.Errorf("no progress: %v", err)
		return false
	}
	t.Logf("%d more publishes acknowledged in %v", n, time.Since(start).Round(time.Millisecond))
	return true
}

// judge finishes the workload and fails t on any anomaly, logging the
// report either way.
func judge(t *testing.T, l *histcheck.Load) {
	t.Helper()
	sum, err := l.Finish(15 * time.Second)
	h := l.History()
	errs := map[string]int{}
	for _, e := range h.Events() {
		switch e.Op {
		case histcheck.OpPubErr, histcheck.OpLeft, histcheck.OpJoinErr:
			errs[fmt.Sprintf("%s %d %s", e.Op, e.Code, e.Err)]++
		}
	}
	t.Logf("clients connected %d times (reconnects included); errors, left and bye: %v; history check:\n%s",
		h.Count(histcheck.OpReconnect), errs, sum.String())
	if err != nil {
		t.Errorf("the end was not reached: %v", err)
	}
	if err := sum.Err(); err != nil {
		t.Error(err)
	}
	if sum.Total.Acked == 0 || sum.Total.Histories == 0 {
		t.Errorf("nothing to judge: %s", sum.Total.String())
	}
}

// seedsBut lists the gossip addresses of the nodes other than n.
func seedsBut(nodes []*proctest.Node, n *proctest.Node) []string {
	var out []string
	for _, o := range nodes {
		if o != n {
			out = append(out, o.Gossip)
		}
	}
	return out
}

// run runs each step under load, waiting after each for 100 more
// acknowledged publishes (and going no further after one that brings
// none), then judges the run.
func (h *histRun) run(t *testing.T, steps ...func()) {
	t.Helper()
	for _, step := range steps {
		step()
		if !progress(t, h.load, 100) {
			break
		}
	}
	judge(t, h.load)
}

// TestHistoryRollingRestart: each of three nodes in turn is stopped with
// SIGTERM and started again (same name and ports, empty memory) under
// load; nothing acknowledged is lost, no member sees a reset.
func TestHistoryRollingRestart(t *testing.T) {
	h := startHistRun(t, "roll")
	var steps []func()
	for _, n := range h.nodes {
		steps = append(steps, func() {
			start := time.Now()
			if err := n.Term(20 * time.Second); err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
			n.Restart(seedsBut(h.nodes, n)...)
			proctest.WaitFormed(t, h.nodes, 20*time.Second)
			t.Logf("%s stopped, restarted and back in the cluster in %v", n.Name, time.Since(start).Round(time.Millisecond))
		})
	}
	h.run(t, steps...)
}

// TestHistoryKillOwner: SIGKILL the owner of busy rooms under load,
// restart it empty, then SIGKILL the owner of the other rooms.
func TestHistoryKillOwner(t *testing.T) {
	h := startHistRun(t, "kill")
	h.run(t,
		func() {
			h.victim.Kill()
			proctest.WaitDead(t, h.nodes[:2], h.victim.Name, time.Now(), 10*time.Second)
		},
		func() {
			h.victim.Restart(seedsBut(h.nodes, h.victim)...)
			proctest.WaitFormed(t, h.nodes, 20*time.Second)
		},
		func() {
			for _, n := range h.nodes {
				if n.Name == h.second {
					n.Kill()
				}
			}
		})
}

// TestHistoryFreezeOwner: SIGSTOP the owner of busy rooms for 10 s under
// load, then SIGCONT: the resumed node must not acknowledge or deliver
// anything as a stale owner.
func TestHistoryFreezeOwner(t *testing.T) {
	h := startHistRun(t, "freeze")
	var frozen time.Time
	h.run(t,
		func() {
			if err := h.victim.Freeze(); err != nil {
				t.Fatal(err)
			}
			frozen = time.Now()
			t.Cleanup(func() { _ = h.victim.Thaw() })
		},
		func() {
			time.Sleep(10*time.Second - time.Since(frozen)) // the fault's length, not a wait for a condition
			if err := h.victim.Thaw(); err != nil {
				t.Fatal(err)
			}
		})
}
