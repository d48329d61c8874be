package room

import (
	"fmt"
	"testing"
)

// ringSub is a cheap Subscriber: it keeps the last few events in a bounded
// ring and counts them, like a session's queue that never fills.
type ringSub struct {
	ring [64]*Event
	n    int
}

func (s *ringSub) Deliver(ev *Event) {
	s.ring[s.n%len(s.ring)] = ev
	s.n++
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			m := newManager(b, Config{})
			subs := make([]*ringSub, n)
			for i := range subs {
				subs[i] = &ringSub{}
				req := JoinRequest{Room: "bench", Conn: fmt.Sprintf("c%d", i), User: "u"}
				if err := m.Join(req, subs[i]); err != nil {
					b.Fatal(err)
				}
			}
			req := PublishRequest{Room: "bench", Conn: "c0", User: "u", Data: mp(b, map[string]any{"text": "hello, room", "n": 42})}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Publish(req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if subs[n-1].n < b.N {
				b.Fatalf("last subscriber got %d events of %d", subs[n-1].n, b.N)
			}
		})
	}
}

func BenchmarkPublishParallelRooms(b *testing.B) {
	m := newManager(b, Config{})
	const rooms = 64
	for i := range rooms {
		for j := range 10 {
			if err := m.Join(JoinRequest{Room: fmt.Sprintf("r%d", i), Conn: fmt.Sprint(j)}, &ringSub{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	data := mp(b, "hello")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := m.Publish(PublishRequest{Room: fmt.Sprintf("r%d", i%rooms), Data: data, FromAPI: true}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkJoin joins (and leaves) a room that has 100 members and a full
// history, resetting with the last 20 messages.
func BenchmarkJoin(b *testing.B) {
	m := newManager(b, Config{})
	for i := range 100 {
		if err := m.Join(JoinRequest{Room: "bench", Conn: fmt.Sprintf("c%d", i), Presence: mp(b, i)}, &ringSub{}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 100 {
		if _, err := m.Publish(PublishRequest{Room: "bench", Data: mp(b, i), FromAPI: true}); err != nil {
			b.Fatal(err)
		}
	}
	sub := &ringSub{}
	req := JoinRequest{Room: "bench", Conn: "joiner", User: "u", Presence: mp(b, "here"), History: 20}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.Join(req, sub); err != nil {
			b.Fatal(err)
		}
		m.Leave("bench", sub)
	}
}
