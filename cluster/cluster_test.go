package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
)

func urlsFrom(nodes []*node, first int) []string {
	var out []string
	for i := range nodes {
		out = append(out, nodes[(first+i)%len(nodes)].URL)
	}
	return out
}

// TestThreeNodes: members of one room on three different nodes see one
// gapless order under concurrent publishing; a member resumes on another
// node; presence and state read the same from every node; a message
// published through the API of one node reaches an SSE observer on another.
func TestThreeNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	const roomName, per = "chat:three", 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var members []*wsMember
	var wg sync.WaitGroup
	for i := range nodes {
		m := newMember(t, roomName, urlsFrom(nodes, i)...)
		members = append(members, m)
		wg.Add(1)
		go func() { defer wg.Done(); m.run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()

	var pubs sync.WaitGroup
	for p := 1; p <= 2; p++ {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := 0; i < per; i++ {
				if err := members[p].conn.Send(client.M{"t": "pub", "r": roomName, "d": fmt.Sprintf("p%d-%d", p, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	pubs.Wait()
	checkFor(t, 20*time.Second, func() error {
		for i, m := range members {
			if n := m.count(); n != 2*per {
				return fmt.Errorf("member %d has %d of %d", i, n, 2*per)
			}
		}
		return nil
	})
	seqs0, data0, _ := members[0].snapshot()
	for i, m := range members {
		seqs, data, err := m.snapshot()
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		for j := range seqs {
			if seqs[j] != uint64(j+1) || data[j] != data0[j] {
				t.Fatalf("member %d at %d: seq %d %q, member 0: seq %d %q", i, j, seqs[j], data[j], seqs0[j], data0[j])
			}
		}
	}

	// Member 0 loses its connection and comes back on node 1, with since.
	_ = members[0].conn.Close()
	for i := 0; i < 10; i++ {
		_ = members[2].conn.Send(client.M{"t": "pub", "r": roomName, "d": fmt.Sprintf("late-%d", i)})
	}
	checkFor(t, 20*time.Second, func() error {
		if n := members[0].count(); n != 2*per+10 {
			return fmt.Errorf("member 0 has %d", n)
		}
		return nil
	})
	if _, _, err := members[0].snapshot(); err != nil {
		t.Fatal(err)
	}
	if members[0].resets != 0 {
		t.Fatal("resume on another node reset the room")
	}

	// Presence and state from every node.
	req := func(n *node, path string) string {
		b, _ := json.Marshal(apiGet(t, n.URL+"/v1/rooms/"+roomName+path))
		return string(b)
	}
	putState(t, nodes[1].URL+"/v1/rooms/"+roomName+"/state/title", `"three nodes"`)
	for _, n := range nodes[1:] {
		if a, b := req(nodes[0], "/presence"), req(n, "/presence"); a != b {
			t.Fatalf("presence differs:\n%s\n%s", a, b)
		}
		if a, b := req(nodes[0], "/state"), req(n, "/state"); a != b || !strings.Contains(a, "three nodes") {
			t.Fatalf("state differs:\n%s\n%s", a, b)
		}
	}
	// Member 0's old connection stays present for its grace (its new
	// connection is on another node, which cannot reuse its id), then goes.
	checkFor(t, 10*time.Second, func() error {
		if pres := apiGet(t, nodes[2].URL+"/v1/rooms/"+roomName+"/presence")["members"].([]any); len(pres) != 3 {
			return fmt.Errorf("presence lists %d members, want 3 (one per node)", len(pres))
		}
		return nil
	})

	// API on node 0, SSE observer on node 2.
	events := sseEvents(t, nodes[2].URL+"/v1/rooms/"+roomName+"/events")
	waitEvent(t, events, "snapshot", "")
	out := apiPost(t, nodes[0].URL+"/v1/rooms/"+roomName+"/messages", `{"data":"cross-node"}`)
	seq := fmt.Sprint(out["seq"])
	waitEvent(t, events, "message", `"seq":`+seq+`,`)

	// Two of the three nodes are edges for this room: they forwarded ops
	// over their links.
	_, owner := nodes[0].cl.Placement().OwnerOf(roomName)
	for _, n := range nodes {
		if n.metrics.linksUp.Load() == 0 {
			t.Errorf("%s opened no peer link", n.name)
		}
		if n.name != owner && n.metrics.forwarded.Load() == 0 {
			t.Errorf("%s is an edge but forwarded nothing", n.name)
		}
	}
}

func waitEvent(t *testing.T, events <-chan [2]string, name, contains string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev[0] == name && strings.Contains(ev[1], contains) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event containing %q", name, contains)
		}
	}
}

func putState(t *testing.T, url, body string) {
	t.Helper()
	req, _ := newRequest("PUT", url, body)
	resp, err := defaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s: %s", url, resp.Status)
	}
}

// load publishes into rooms at a total rate through publishers spread over
// the given nodes, and records every acknowledged message.
type load struct {
	rooms   []string
	mu      sync.Mutex
	acked   map[string]map[string]bool // room -> payloads acknowledged
	errs    atomic.Int64
	stopped chan struct{}
	wg      sync.WaitGroup
}

func startLoad(t *testing.T, ctx context.Context, nodes []*node, rooms []string, perSecond int) *load {
	l := &load{rooms: rooms, acked: map[string]map[string]bool{}, stopped: make(chan struct{})}
	for _, r := range rooms {
		l.acked[r] = map[string]bool{}
	}
	const pubs = 5
	for p := 0; p < pubs; p++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.publisher(t, ctx, urlsFrom(nodes, p), p, perSecond/pubs)
		}()
	}
	return l
}

// publisher publishes with ids and keys, one at a time, resending after a
// reconnect with the same key (exactly once, as the SDK does).
func (l *load) publisher(t *testing.T, ctx context.Context, urls []string, p, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var c *client.Conn
	next := 0
	dial := func() bool {
		for ctx.Err() == nil {
			url := urls[next%len(urls)]
			next++
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			conn, _, err := client.Dial(dctx, url, nil)
			if err == nil {
				err = conn.Hello(dctx, "", nil)
				for i, r := range l.rooms {
					if err == nil {
						_ = conn.Send(client.M{"t": "join", "id": 1000 + i, "r": r})
						_, err = conn.Expect(dctx, "joined", "pres", "msg", "ok", "state")
					}
				}
			}
			cancel()
			if err == nil {
				c = conn
				return true
			}
			if conn != nil {
				_ = conn.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	if !dial() {
		return
	}
	defer func() { _ = c.Close() }()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r := l.rooms[(p+i)%len(l.rooms)]
		payload := fmt.Sprintf("p%d-%d", p, i)
		for attempt := 0; ; attempt++ {
			err := c.Send(client.M{"t": "pub", "id": i + 1, "r": r, "d": payload, "key": payload})
			var seq uint64
			if err == nil {
				actx, cancel := context.WithTimeout(ctx, 15*time.Second)
				for {
					f, ferr := c.Next(actx)
					if ferr != nil {
						err = ferr
						break
					}
					if f.T == "ok" && f.ID == uint64(i+1) {
						seq = f.S
						break
					}
					if f.T == "err" && f.ID == uint64(i+1) {
						err = fmt.Errorf("err %d %s", f.Code, f.Msg)
						break
					}
				}
				cancel()
			}
			if err == nil && seq > 0 {
				l.mu.Lock()
				l.acked[r][payload] = true
				l.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return
			}
			l.errs.Add(1)
			_ = c.Close()
			if !dial() {
				return
			}
		}
	}
}

// verify checks that every member saw every acknowledged message of its
// room exactly once, gapless and in order.
func (l *load) verify(t *testing.T, members map[string][]*wsMember) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0
	for r, ms := range members {
		want := l.acked[r]
		total += len(want)
		for i, m := range ms {
			seqs, data, err := m.snapshot()
			if err != nil {
				t.Fatalf("%s member %d: %v", r, i, err)
			}
			seen := map[string]bool{}
			for j, d := range data {
				if seen[d] {
					t.Fatalf("%s member %d: %q twice (seq %d)", r, i, d, seqs[j])
				}
				seen[d] = true
			}
			var missing []string
			for p := range want {
				if !seen[p] {
					missing = append(missing, p)
				}
			}
			if len(missing) > 0 {
				sort.Strings(missing)
				t.Fatalf("%s member %d misses %d acknowledged messages, e.g. %v", r, i, len(missing), missing[:min(5, len(missing))])
			}
		}
	}
	if total == 0 {
		t.Fatal("no message was acknowledged")
	}
	t.Logf("%d acknowledged messages verified", total)
}
