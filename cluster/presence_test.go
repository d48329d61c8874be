package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
)

// TestPresenceAfterLeaderLoss: a room's members are on three nodes; the
// node that leads the room stops hard. Presence was soft state there: the
// new leader rebuilds it from the members the other nodes re-join, and the
// member whose node is gone is told gone once to everyone else, while the
// others are never told gone (no flicker, no ghost). The stop comes once
// the others have been told the victim's member joined: a member its
// node's end took with it before anyone saw it is nobody's ghost.
func TestPresenceAfterLeaderLoss(t *testing.T) {
	nodes := startCluster(t, 3)
	victim := nodes[2]
	roomName := roomOwnedBy(victim, "chat:pres-")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type seen struct {
		mu     sync.Mutex
		joins  []string
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
				if f.T != protocol.TypePres {
					continue
				}
				var gone []string
				if !f.Leave.IsNil() {
					_ = msgpack.Unmarshal(f.Leave, &gone)
				}
				joined, _ := client.Members(f.Join)
				v.mu.Lock()
				v.leaves = append(v.leaves, gone...)
				for _, m := range joined {
					v.joins = append(v.joins, m.C)
				}
				v.mu.Unlock()
			}
		}()
	}
	checkFor(t, 10*time.Second, func() error {
		for i, v := range views[:2] {
			v.mu.Lock()
			told := slices.Contains(v.joins, ids[2])
			v.mu.Unlock()
			if !told {
				return fmt.Errorf("the member on %s was not told the member on %s joined", nodes[i].name, victim.name)
			}
		}
		return nil
	})
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

// TestPresenceWindowAcrossNodes: members on three nodes join one room at
// once and change their presence data at once, so that the room's windows
// mention several of them together. Each member's view (its snapshot, then
// every pres frame applied as a client does) comes to the room's, and no
// member is ever told of its own change: the owner's frame crosses the links
// once and each member's session strips its own entry, where an edge used to
// drop a whole frame that mentioned its member.
func TestPresenceWindowAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const roomName = "chat:window"
	type view struct {
		mu   sync.Mutex
		self string
		p    *client.Presence
		own  int // frames that named self
	}
	var (
		conns []*client.Conn
		views []*view
		wg    sync.WaitGroup
	)
	defer wg.Wait()
	for i := range 6 {
		c := dialHello(t, ctx, nodes[i%3].URL)
		defer c.Close()
		conns = append(conns, c)
		views = append(views, &view{self: c.Welcome.C, p: client.NewPresence()})
	}
	var joins sync.WaitGroup
	for i, c := range conns {
		v := views[i]
		joins.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Send(client.M{"t": "join", "id": 1, "r": roomName, "p": 0}); err != nil {
				t.Error(err)
			}
			first := true
			for {
				f, err := c.Next(ctx)
				if err != nil {
					if first {
						joins.Done()
					}
					return
				}
				v.mu.Lock()
				named, err := v.p.Apply(f)
				if err != nil {
					t.Error(err)
				}
				if f.T == protocol.TypePres && slices.Contains(named, v.self) {
					v.own++
				}
				v.mu.Unlock()
				if f.T == protocol.TypeJoined && first {
					first = false
					joins.Done()
				}
			}
		}()
	}
	joins.Wait()
	for _, c := range conns { // every member's new data, at once
		if err := c.Send(client.M{"t": "pres", "r": roomName, "d": 1}); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 10*time.Second, func() error {
		for i, v := range views {
			v.mu.Lock()
			n, own := len(v.p.Members), v.own
			var stale []string
			for c, m := range v.p.Members {
				if d, _ := client.Value(m.D); c != v.self && fmt.Sprint(d) != "1" {
					stale = append(stale, c)
				}
			}
			v.mu.Unlock()
			if own > 0 {
				return fmt.Errorf("member %d was told of its own change %d times", i, own)
			}
			if n != len(views) || len(stale) > 0 {
				return fmt.Errorf("member %d on %s sees %d members, stale data of %v", i, nodes[i%3].name, n, stale)
			}
		}
		return nil
	})
}
