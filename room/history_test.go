package room

import (
	"testing"
	"time"
)

func seqsOf(evs []*Event) []uint64 {
	out := []uint64{}
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// fill publishes msgs and sets state so that the log is
// 1 msg, 2 msg, 3 state a, 4 msg, 5 state b, 6 msg, 7 msg, 8 state a (deleted).
func fill(t *testing.T, m *Manager, room string) {
	t.Helper()
	set := func(k string, v any) {
		t.Helper()
		req := SetRequest{Room: room, Key: k, FromAPI: true}
		if v != nil {
			req.Value = mp(t, v)
		}
		if _, err := m.SetState(req); err != nil {
			t.Fatal(err)
		}
	}
	apiPub(t, m, room, 1)
	apiPub(t, m, room, 2)
	set("a", "A")
	apiPub(t, m, room, 4)
	set("b", "B")
	apiPub(t, m, room, 6)
	apiPub(t, m, room, 7)
	set("a", nil)
}

func TestResumeExactReplay(t *testing.T) {
	m := newManager(t, Config{})
	keep := join(t, m, "r", "keep", "") // keeps the room alive
	fill(t, m, "r")
	epoch := keep.joined(t).Epoch
	for since := uint64(0); since <= 8; since++ {
		rec := join(t, m, "r", "x", "", withSince(epoch, since), withHistory(2))
		j := rec.joined(t)
		if j.Reset || j.State != nil || j.Seq != 8 || j.Epoch != epoch {
			t.Fatalf("since %d: joined %+v, want a resume", since, j)
		}
		if got := seqsOf(j.Log); !eqSeqs(got, seqRange(since+1, 8)) {
			t.Fatalf("since %d: log %v", since, got)
		}
		if since < 8 && j.Log[0] != keep.of(KindMsg, KindState)[since] {
			t.Fatalf("since %d: replayed event is not the original *Event", since)
		}
		m.Leave("r", rec)
	}
	// The live stream follows the replay without a gap.
	rec := join(t, m, "r", "x", "", withSince(epoch, 5))
	apiPub(t, m, "r", 9)
	if got := rec.durable(); !eqSeqs(got, []uint64{9}) {
		t.Fatalf("live after resume %v", got)
	}
}

func TestResetCases(t *testing.T) {
	m := newManager(t, Config{Default: Namespace{HistorySize: 4}})
	keep := join(t, m, "r", "keep", "")
	fill(t, m, "r") // history holds 5..8
	epoch := keep.joined(t).Epoch
	for _, tc := range []struct {
		name string
		opts []func(*JoinRequest)
		log  []uint64
	}{
		{"no since", []func(*JoinRequest){withHistory(10)}, []uint64{6, 7}},
		{"no since, no history", nil, []uint64{}},
		{"unknown epoch", []func(*JoinRequest){withSince("other", 6), withHistory(1)}, []uint64{7}},
		{"seq too old", []func(*JoinRequest){withSince(epoch, 3), withHistory(2)}, []uint64{6, 7}},
		{"seq ahead", []func(*JoinRequest){withSince(epoch, 9), withHistory(5)}, []uint64{6, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := join(t, m, "r", "x", "", tc.opts...)
			defer m.Leave("r", rec)
			j := rec.joined(t)
			if !j.Reset || j.Seq != 8 || j.Epoch != epoch {
				t.Fatalf("joined %+v, want a reset", j)
			}
			if len(j.State) != 1 || string(j.State["b"]) != string(mp(t, "B")) {
				t.Fatalf("state snapshot %v", j.State)
			}
			if got := seqsOf(j.Log); !eqSeqs(got, tc.log) {
				t.Fatalf("log %v, want %v", got, tc.log)
			}
			for _, ev := range j.Log {
				if ev.Kind != KindMsg {
					t.Fatalf("reset log holds a %v", ev.Kind)
				}
			}
		})
	}
	// since 4 is the oldest resumable point: history holds 5.
	rec := join(t, m, "r", "y", "", withSince(epoch, 4))
	if j := rec.joined(t); j.Reset || !eqSeqs(seqsOf(j.Log), []uint64{5, 6, 7, 8}) {
		t.Fatalf("joined %+v", j)
	}
	// The snapshot is a copy: later sets do not change it.
	j := join(t, m, "r", "z", "").joined(t)
	if _, err := m.SetState(SetRequest{Room: "r", Key: "c", Value: mp(t, 1), FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	if len(j.State) != 1 {
		t.Fatal("snapshot shares the room's map")
	}
}

func TestHistoryBounds(t *testing.T) {
	clk := newClock()
	m := newManager(t, Config{Now: clk.Now, Default: Namespace{HistorySize: 5, HistoryTTL: time.Minute}})
	keep := join(t, m, "r", "keep", "")
	epoch := keep.joined(t).Epoch
	for i := range 12 {
		apiPub(t, m, "r", i)
	}
	e, evs, ok := m.History("r", 0, 0)
	if !ok || e != epoch || !eqSeqs(seqsOf(evs), seqRange(8, 12)) {
		t.Fatalf("history by count: %v %v", seqsOf(evs), ok)
	}
	if _, evs, _ := m.History("r", 9, 0); !eqSeqs(seqsOf(evs), []uint64{10, 11, 12}) {
		t.Fatalf("history since 9: %v", seqsOf(evs))
	}
	if _, evs, _ := m.History("r", 3, 2); !eqSeqs(seqsOf(evs), []uint64{8, 9}) {
		t.Fatalf("history since 3 limit 2: %v", seqsOf(evs))
	}
	if _, evs, _ := m.History("r", 12, 0); len(evs) != 0 {
		t.Fatalf("history since 12: %v", seqsOf(evs))
	}
	if _, evs, _ := m.History("r", 50, 0); len(evs) != 0 {
		t.Fatalf("history since 50: %v", seqsOf(evs))
	}
	if _, _, ok := m.History("nope", 0, 0); ok {
		t.Fatal("history of a missing room")
	}

	// By age: 8..12 at t0, 13..14 at t0+30s; at t0+70s only 13..14 remain.
	clk.Add(30 * time.Second)
	apiPub(t, m, "r", 13)
	apiPub(t, m, "r", 14)
	clk.Add(40 * time.Second)
	if _, evs, _ := m.History("r", 0, 0); !eqSeqs(seqsOf(evs), []uint64{13, 14}) {
		t.Fatalf("history by age: %v", seqsOf(evs))
	}
	// A client whose next seq aged out must reset; one at 12 still resumes.
	if j := join(t, m, "r", "a", "", withSince(epoch, 11)).joined(t); !j.Reset {
		t.Fatal("resumed across an aged-out event")
	}
	if j := join(t, m, "r", "b", "", withSince(epoch, 12)).joined(t); j.Reset || !eqSeqs(seqsOf(j.Log), []uint64{13, 14}) {
		t.Fatalf("joined %+v", j)
	}
	// Everything ages out: history is empty, the seq stays, a resume at the
	// current seq still works.
	clk.Add(2 * time.Minute)
	if _, evs, _ := m.History("r", 0, 0); len(evs) != 0 {
		t.Fatalf("history after TTL: %v", seqsOf(evs))
	}
	if j := join(t, m, "r", "c", "", withSince(epoch, 14), withHistory(3)).joined(t); j.Reset || j.Seq != 14 || len(j.Log) != 0 {
		t.Fatalf("joined %+v", j)
	}
	if j := join(t, m, "r", "d", "", withSince(epoch, 13), withHistory(3)).joined(t); !j.Reset || len(j.Log) != 0 {
		t.Fatalf("joined %+v", j)
	}
	// Pruning happens on append too.
	apiPub(t, m, "r", 15)
	clk.Add(61 * time.Second)
	apiPub(t, m, "r", 16)
	r, _ := m.lookup("r", noCreate)
	r.mu.Lock()
	n := r.hist.n
	r.mu.Unlock()
	if n != 1 {
		t.Fatalf("history holds %d after append", n)
	}
}

func TestHistoryRing(t *testing.T) {
	h := history{max: 3, ttl: time.Hour}
	for s := uint64(1); s <= 10; s++ {
		h.push(&Event{Kind: KindMsg, Seq: s})
		lo := uint64(1)
		if s > 3 {
			lo = s - 2
		}
		want := seqRange(lo, s)
		if got := seqsOf(h.from(0, 0)); !eqSeqs(got, want) {
			t.Fatalf("after %d: %v, want %v", s, got, want)
		}
	}
	h.push(&Event{Kind: KindState, Seq: 11})
	if got := seqsOf(h.lastMsgs(5)); !eqSeqs(got, []uint64{9, 10}) {
		t.Fatalf("lastMsgs %v", got)
	}
	if got := seqsOf(h.lastMsgs(1)); !eqSeqs(got, []uint64{10}) {
		t.Fatalf("lastMsgs(1) %v", got)
	}
	none := history{max: 0}
	none.push(&Event{Seq: 1})
	if none.n != 0 {
		t.Fatal("history size 0 kept an event")
	}
}
