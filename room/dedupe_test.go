package room

import (
	"testing"
	"testing/synctest"
	"time"
)

func keyed(t *testing.T, m *Manager, room, conn, key string, v any) uint64 {
	t.Helper()
	seq, err := m.Publish(PublishRequest{Room: room, Conn: conn, Data: mp(t, v), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestIdempotentResend(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b := join(t, m, "r", "b", "ub")
	s1 := keyed(t, m, "r", "a", "k1", "hello")
	pub(t, m, "r", "b", "other")
	if s := keyed(t, m, "r", "a", "k1", "hello again"); s != s1 {
		t.Fatalf("resend got seq %d, want %d", s, s1)
	}
	// A key is per room, not per member: another conn's resend is deduped too.
	if s := keyed(t, m, "r", "b", "k1", "x"); s != s1 {
		t.Fatalf("resend by b got seq %d", s)
	}
	if s := keyed(t, m, "r", "a", "k2", "new"); s != 3 {
		t.Fatalf("new key got seq %d", s)
	}
	for _, r := range []*recorder{a, b} {
		if got := r.durable(); !eqSeqs(got, []uint64{1, 2, 3}) {
			t.Fatalf("delivered %v", got)
		}
	}
	if _, evs, _ := m.History("r", 0, 0); len(evs) != 3 {
		t.Fatalf("history holds %d", len(evs))
	}
	// The API's keys share the room's set.
	seq, err := m.Publish(PublishRequest{Room: "r", Data: mp(t, 1), Key: "k2", FromAPI: true})
	if err != nil || seq != 3 {
		t.Fatalf("API resend = %d, %v", seq, err)
	}
}

func TestDedupeWindow(t *testing.T) {
	clk := newClock()
	m := newManager(t, Config{Now: clk.Now, DedupeWindow: time.Second}) // raised to 5 min
	join(t, m, "r", "a", "")
	s1 := keyed(t, m, "r", "a", "k", 1)
	clk.Add(4 * time.Minute)
	if s := keyed(t, m, "r", "a", "k", 1); s != s1 {
		t.Fatalf("within the window: seq %d", s)
	}
	s2 := keyed(t, m, "r", "a", "k2", 1)
	clk.Add(time.Minute + time.Second)
	if s := keyed(t, m, "r", "a", "k", 1); s == s1 {
		t.Fatal("key remembered past the window")
	}
	if s := keyed(t, m, "r", "a", "k2", 1); s != s2 {
		t.Fatal("younger key forgotten")
	}
}

func TestDedupeMaxKeys(t *testing.T) {
	m := newManager(t, Config{DedupeMaxKeys: 2})
	join(t, m, "r", "a", "")
	sa := keyed(t, m, "r", "a", "a", 1)
	sb := keyed(t, m, "r", "a", "b", 1)
	keyed(t, m, "r", "a", "c", 1) // forgets a
	if s := keyed(t, m, "r", "a", "b", 1); s != sb {
		t.Fatal("b forgotten")
	}
	if s := keyed(t, m, "r", "a", "a", 1); s == sa {
		t.Fatal("a still remembered")
	}
}

func TestDedupeQueue(t *testing.T) {
	d := dedupe{window: time.Minute, max: 1000}
	now := time.Unix(0, 0)
	for i := range 5000 {
		key := string(rune('a' + i%26))
		if _, ok := d.lookup(key, now); !ok {
			d.add(key, uint64(i), now)
		}
		now = now.Add(time.Second)
		if len(d.seen) != len(d.order)-d.head {
			t.Fatalf("step %d: %d keys, %d records", i, len(d.seen), len(d.order)-d.head)
		}
		if len(d.order) > 2*d.max+64 {
			t.Fatalf("queue grew to %d", len(d.order))
		}
	}
	d.lookup("x", now.Add(time.Hour))
	if d.seen != nil || d.order != nil {
		t.Fatal("an empty dedupe still holds memory")
	}
}

func TestDedupeForgottenWithEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{Default: Namespace{IdleTTL: time.Minute}})
		a := join(t, m, "r", "a", "")
		keyed(t, m, "r", "a", "k", 1)
		e1 := a.joined(t).Epoch
		m.Leave("r", a)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		b := join(t, m, "r", "b", "")
		if b.joined(t).Epoch == e1 {
			t.Fatal("same epoch after idle drop")
		}
		keyed(t, m, "r", "b", "k", 1)
		if n := len(b.of(KindMsg)); n != 1 {
			t.Fatalf("resend in a new epoch delivered %d times, want 1", n)
		}
	})
}
