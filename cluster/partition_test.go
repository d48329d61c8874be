package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/room"
)

// TestPartitionMinorityStopsAcking cuts one node of three off the others
// (gossip and peer links: cluster.Faults, a fault-injecting memberlist
// transport and link layer) while it leads a room. The cut-off node never
// acknowledges a write made after the cut and stops serving the room
// within an election timeout or two; the majority elects another leader and
// acknowledges writes; after the cut heals, every replica holds one
// history, with every acknowledged write once and nothing else.
func TestPartitionMinorityStopsAcking(t *testing.T) {
	nodes := startCluster(t, 3)
	minority, majority := nodes[2], nodes[:2]
	roomName := ""
	for i := 0; roomName == ""; i++ {
		r := fmt.Sprintf("chat:part-%d", i)
		if _, owner := minority.cl.Placement().OwnerOf(r); owner == minority.name {
			roomName = r
		}
	}
	ctx := context.Background()
	acked := map[string]uint64{} // idempotency key -> seq
	publish := func(n *node, key string, timeout time.Duration) error {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		data, _ := msgpack.Marshal(key)
		seq, err := n.cl.Publish(pctx, room.PublishRequest{Room: roomName, Key: key, Data: data, FromAPI: true})
		if err == nil {
			acked[key] = seq
		}
		return err
	}
	for i := range 10 {
		if err := publish(minority, fmt.Sprintf("before-%d", i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if !cluster.Serves(minority.cl, roomName) {
		t.Fatalf("%s does not lead %s", minority.name, roomName)
	}

	cut := time.Now()
	for _, n := range majority {
		n.faults.Cut(minority.name, minority.cl.GossipAddr())
		minority.faults.Cut(n.name, n.cl.GossipAddr())
	}
	// The minority: nothing written after the cut is acknowledged, and it
	// stops serving the room (CheckQuorum).
	stepDown := time.Duration(0)
	for i := 0; time.Since(cut) < 4*time.Second; i++ {
		key := fmt.Sprintf("minority-%d", i)
		if err := publish(minority, key, 150*time.Millisecond); err == nil {
			t.Errorf("the cut-off node acknowledged %s as seq %d, %v after the cut", key, acked[key], time.Since(cut))
		}
		if stepDown == 0 && !cluster.Serves(minority.cl, roomName) {
			stepDown = time.Since(cut)
		}
	}
	if stepDown == 0 || stepDown > 3*time.Second {
		t.Errorf("the cut-off node still served the room %v after the cut (stopped after %v)", time.Since(cut), stepDown)
	}
	// The majority carries on.
	var firstOK time.Duration
	checkFor(t, 10*time.Second, func() error {
		if err := publish(majority[0], "majority-0", 500*time.Millisecond); err != nil {
			return err
		}
		firstOK = time.Since(cut)
		return nil
	})
	for i := 1; i < 20; i++ {
		if err := publish(majority[i%2], fmt.Sprintf("majority-%d", i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("after the cut: the cut-off node stopped serving after %v; the majority acknowledged a write after %v", stepDown, firstOK)

	for _, n := range nodes {
		n.faults.Heal()
	}
	waitConverged(t, nodes...)
	for i := range 10 {
		if err := publish(minority, fmt.Sprintf("after-%d", i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// One history on every replica: the same epoch and events, holding
	// each acknowledged key once, at the seq it was acknowledged with, and
	// nothing that was not acknowledged.
	checkFor(t, 10*time.Second, func() error {
		var first []string
		for _, n := range nodes {
			epoch, events, ok := n.rooms.History(roomName, 0, 0)
			if !ok {
				return fmt.Errorf("%s holds no replica of %s", n.name, roomName)
			}
			var h []string
			for _, ev := range events {
				h = append(h, fmt.Sprintf("%s/%d/%x", epoch, ev.Seq, ev.Frame))
			}
			if first == nil {
				first = h
			} else if !slices.Equal(h, first) {
				return fmt.Errorf("%s's history differs: %d events, not %d", n.name, len(h), len(first))
			}
		}
		if len(first) != len(acked) {
			return fmt.Errorf("%d events, %d writes acknowledged", len(first), len(acked))
		}
		return nil
	})
	epoch, events, _ := nodes[0].rooms.History(roomName, 0, 0)
	bySeq := map[uint64]bool{}
	for _, ev := range events {
		bySeq[ev.Seq] = true
	}
	for key, seq := range acked {
		if !bySeq[seq] {
			t.Errorf("%s was acknowledged as seq %d, which the history (epoch %s) lacks", key, seq, epoch)
		}
	}
}
