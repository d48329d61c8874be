package hooks

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
)

func publishedEvent(room string, seq uint64) Event {
	return Event{Published: &PublishedEvent{Room: room, Epoch: "e", Seq: seq, Data: json.RawMessage(fmt.Sprint(seq))}}
}

// acked returns, per room, the seqs of the published events the backend
// acknowledged (answered 2xx), in the order it got them.
func acked(t *testing.T, b *testBackend) map[string][]uint64 {
	out := map[string][]uint64{}
	for _, r := range b.requests() {
		if r.hook != Published || r.sig != nil || !r.ok {
			continue
		}
		var ev PublishedEvent
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatal(err)
		}
		out[ev.Room] = append(out[ev.Room], ev.Seq)
	}
	return out
}

func TestPublishedInOrderAcrossOutage(t *testing.T) {
	b := newTestBackend(t)
	var mu sync.Mutex
	var cursor = map[string]uint64{}
	h := newTestHooks(t, b.srv.URL, func(c *Config) {
		c.RetryAttempts = 1000 // never dead-letter here
	})
	h.OnDelivered(func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Pos() != cursor[ev.Room()]+1 {
			t.Errorf("%s: delivered %d after %d", ev.Room(), ev.Pos(), cursor[ev.Room()])
		}
		cursor[ev.Room()] = ev.Pos()
	})
	const n = 50
	rooms := []string{"a", "b", "c"}
	for seq := uint64(1); seq <= n; seq++ {
		if seq == 10 {
			b.setMode("500") // the backend fails for a while
		}
		if seq == 30 {
			b.setMode("")
		}
		for _, r := range rooms {
			h.Deliver(publishedEvent(r, seq))
		}
		if seq == 10 {
			testutil.CheckFor(t, 5*time.Second, func() error { // the outage is seen
				if b.failures() < 3 {
					return fmt.Errorf("%d failures", b.failures())
				}
				return nil
			})
		}
	}
	testutil.CheckFor(t, 10*time.Second, func() error {
		got := acked(t, b)
		for _, r := range rooms {
			if len(got[r]) < n {
				return fmt.Errorf("room %s: %d acknowledged", r, len(got[r]))
			}
		}
		return nil
	})
	for r, seqs := range acked(t, b) {
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("room %s: acknowledged %v, want 1..%d in order", r, seqs, n)
			}
		}
	}
	if len(h.DeadLetters(0, 0)) != 0 {
		t.Fatal("dead letters without a dead-lettering")
	}
}

func TestDeadLettersFillAndReplay(t *testing.T) {
	b := newTestBackend(t)
	b.setMode("500")
	h := newTestHooks(t, b.srv.URL, func(c *Config) {
		c.RetryAttempts, c.DeadLetterMax = 2, 8
	})
	for seq := uint64(1); seq <= 10; seq++ {
		h.Deliver(publishedEvent("a", seq))
	}
	h.Deliver(Event{Lifecycle: &RoomEvent{Hook: Occupied, Room: "b", Epoch: "e", N: 1, ID: "e/1"}})
	testutil.CheckFor(t, 10*time.Second, func() error {
		d := h.DeadLetters(0, 0)
		if len(d) != 8 || d[len(d)-1].ID != 11 {
			return fmt.Errorf("%d dead letters", len(d))
		}
		h.del.mu.Lock()
		defer h.del.mu.Unlock()
		if h.del.queued != 0 {
			return fmt.Errorf("%d queued", h.del.queued)
		}
		return nil
	})
	dl := h.DeadLetters(0, 0)
	if dl[0].Attempts != 2 || dl[0].Error == "" || dl[0].Hook != Published && dl[0].Hook != Occupied {
		t.Fatalf("dead letter %+v", dl[0])
	}
	if page := h.DeadLetters(dl[2].ID, 2); len(page) != 2 || page[0].ID != dl[3].ID {
		t.Fatalf("page after %d: %+v", dl[2].ID, page)
	}
	b.setMode("")
	if n := h.Replay([]uint64{dl[0].ID}); n != 1 {
		t.Fatalf("replayed %d", n)
	}
	if n := h.Replay(nil); n != 7 {
		t.Fatalf("replayed %d, want the other 7", n)
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		n := 0
		for _, r := range b.requests() {
			if r.ok {
				n++
			}
		}
		if n < 8 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	if len(h.DeadLetters(0, 0)) != 0 {
		t.Fatal("the store kept replayed entries")
	}
}
