package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
)

var hooksSecret = []byte("hooks-secret")

func newTestHooks(t *testing.T, url string, logger *slog.Logger) *hooks.Hooks {
	t.Helper()
	h, err := hooks.New(hooks.Config{
		Secret:   hooksSecret,
		Default:  hooks.Namespace{URL: url, Hooks: []hooks.Name{hooks.Published, hooks.Occupied, hooks.Vacated}},
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, RetryAttempts: 1 << 20,
		BreakerFailures: 1 << 20, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// lifecycleBackend records the events it acknowledges.
type lifecycleBackend struct {
	mu        sync.Mutex
	failing   bool
	published []uint64 // seqs, in the order acknowledged
	trans     []hooks.RoomEvent
}

func (b *lifecycleBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := hooks.Verify(r.Header.Get(hooks.SignatureHeader), body, time.Now(), 0, hooksSecret); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failing {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	switch hooks.Name(r.Header.Get(hooks.HookHeader)) {
	case hooks.Published:
		var ev hooks.PublishedEvent
		_ = json.Unmarshal(body, &ev)
		b.published = append(b.published, ev.Seq)
	case hooks.Occupied, hooks.Vacated:
		var ev hooks.RoomEvent
		_ = json.Unmarshal(body, &ev)
		b.trans = append(b.trans, ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

// distinct returns the transitions by ID, each once, in the order first
// acknowledged, and how many copies came.
func (b *lifecycleBackend) distinct() (out []string, copies int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range b.trans {
		if seen[ev.ID] {
			copies++
			continue
		}
		seen[ev.ID] = true
		out = append(out, string(ev.Hook)+" "+ev.ID)
	}
	return out, copies
}

// firstAcks returns the published seqs in the order first acknowledged.
func (b *lifecycleBackend) firstAcks() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	seen := map[uint64]bool{}
	for _, s := range b.published {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// TestHooksAcrossOwnerChange: a room's members are on two nodes, its owner
// on a third. The room becomes occupied once; messages are published, the
// last ones while the backend is down; the owner stops hard, and a new
// leader is elected. The new owner delivers the messages the old one could
// not, in order, and does not report the room occupied again (its members
// re-join it); when the members leave, it reports the room vacated, once.
func TestHooksAcrossOwnerChange(t *testing.T) {
	be := &lifecycleBackend{}
	hs := httptest.NewServer(be)
	defer hs.Close()
	opts := nodeOpts{hooksURL: hs.URL}
	first := startNodeWith(t, "node-0", opts)
	nodes := []*node{first,
		startNodeWith(t, "node-1", opts, first.cl.GossipAddr()),
		startNodeWith(t, "node-2", opts, first.cl.GossipAddr())}
	waitConverged(t, nodes...)
	victim := nodes[2]
	roomName := roomOwnedBy(victim, "chat:hooks-")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var members []*client.Conn
	for _, n := range nodes[:2] {
		c := dialJoin(t, ctx, n.URL, roomName)
		defer c.Close()
		members = append(members, c)
	}
	checkFor(t, 10*time.Second, func() error {
		if got, _ := be.distinct(); len(got) != 1 {
			return fmt.Errorf("transitions %v", got)
		}
		return nil
	})
	got, _ := be.distinct()
	epoch := ""
	if _, err := fmt.Sscanf(got[0], "occupied %s", &epoch); err != nil || len(epoch) < 3 || epoch[len(epoch)-2:] != "/1" {
		t.Fatalf("first transition %q, want occupied EPOCH/1", got[0])
	}
	epoch = epoch[:len(epoch)-2]

	publish := func(i int) {
		apiPost(t, nodes[i%2].URL+"/v1/rooms/"+roomName+"/messages", fmt.Sprintf(`{"data":%d}`, i))
	}
	for i := 1; i <= 10; i++ {
		publish(i)
	}
	checkFor(t, 10*time.Second, func() error {
		if n := len(be.firstAcks()); n != 10 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	be.mu.Lock()
	be.failing = true
	be.mu.Unlock()
	for i := 11; i <= 20; i++ {
		publish(i) // committed, not delivered
	}
	victim.stop(t)
	be.mu.Lock()
	be.failing = false
	be.mu.Unlock()
	checkFor(t, 30*time.Second, func() error {
		if n := len(be.firstAcks()); n != 20 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	if acks := be.firstAcks(); !slices.IsSorted(acks) || acks[0] != 1 || acks[19] != 20 {
		t.Fatalf("first acknowledgements %v, want 1..20 in order", acks)
	}
	// The members re-joined the new owner; its presence recovery ends
	// (the grace, at least 5 s) without a transition.
	time.Sleep(6 * time.Second)
	if got, _ := be.distinct(); len(got) != 1 {
		t.Fatalf("transitions after the owner change: %v, want the one occupied", got)
	}
	for _, c := range members {
		if err := c.Send(client.M{"t": "leave", "id": 2, "r": roomName}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"occupied " + epoch + "/1", "vacated " + epoch + "/2"}
	checkFor(t, 15*time.Second, func() error {
		if got, _ := be.distinct(); !slices.Equal(got, want) {
			return fmt.Errorf("transitions %v, want %v", got, want)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // a third transition would come by now
	got, copies := be.distinct()
	if !slices.Equal(got, want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
	t.Logf("transitions %v; %d redelivered copies", got, copies)
}

// roomOwnedBy returns the first room PREFIX0, PREFIX1, ... that n owns.
func roomOwnedBy(n *node, prefix string) string {
	for i := 0; ; i++ {
		r := fmt.Sprintf("%s%d", prefix, i)
		if _, owner := n.cl.Placement().OwnerOf(r); owner == n.name {
			return r
		}
	}
}

// dialJoin opens an anonymous connection to url and joins roomName.
func dialJoin(t *testing.T, ctx context.Context, url, roomName string) *client.Conn {
	t.Helper()
	c := dialHello(t, ctx, url)
	if err := c.Send(client.M{"t": "join", "id": 1, "r": roomName}); err != nil {
		c.Close()
		t.Fatal(err)
	}
	if _, err := c.Expect(ctx, protocol.TypeJoined, protocol.TypePres); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}
