package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/protocol"
)

// TestPresenceAfterLeaderLoss: a room's members are on three nodes; the
// node that leads the room stops hard. Presence was soft state there: the
// new leader rebuilds it from the members the other nodes re-join, and the
// member whose node is gone is told gone once to everyone else, while the
// others are never told gone (no flicker, no ghost).
func TestPresenceAfterLeaderLoss(t *testing.T) {
	nodes := startCluster(t, 3)
	victim := nodes[2]
	roomName := roomOwnedBy(victim, "chat:pres-")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type seen struct {
		mu     sync.Mutex
		leaves []string
	}
	var (
		ids   []string
		views []*seen
		wg    sync.WaitGroup
	)
	defer wg.Wait()
	for _, n := range nodes {
		c := dialJoin(t, ctx, n.URL, roomName)
		defer c.Close()
		ids = append(ids, c.Welcome.C)
		v := &seen{}
		views = append(views, v)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, err := c.Next(ctx)
				if err != nil {
					return
				}
				if f.T == protocol.TypePres && !f.Leave.IsNil() {
					var gone []string
					_ = msgpack.Unmarshal(f.Leave, &gone)
					v.mu.Lock()
					v.leaves = append(v.leaves, gone...)
					v.mu.Unlock()
				}
			}
		}()
	}
	victim.stop(t)
	// The presence grace (at least 5 s) after the new leader serves, then
	// the one leave.
	checkFor(t, 20*time.Second, func() error {
		for i, v := range views[:2] {
			v.mu.Lock()
			n := len(v.leaves)
			v.mu.Unlock()
			if n == 0 {
				return fmt.Errorf("the member on %s was not told the member on %s left", nodes[i].name, victim.name)
			}
		}
		return nil
	})
	time.Sleep(time.Second) // a second leave, or one of a live member, would come by now
	for i, v := range views[:2] {
		v.mu.Lock()
		leaves := slices.Clone(v.leaves)
		v.mu.Unlock()
		if !slices.Equal(leaves, []string{ids[2]}) {
			t.Errorf("the member on %s was told %v left, want [%s] once", nodes[i].name, leaves, ids[2])
		}
	}
}
