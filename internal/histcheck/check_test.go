package histcheck

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// script builds a synthetic history of one room, "r".
type script struct{ h *History }

func newScript() *script { return &script{h: NewHistory()} }

// pub records a publish of key and, when seq > 0, its ok in epoch.
func (s *script) pub(key, epoch string, seq uint64) *script {
	s.h.Add(Event{Op: OpPub, Room: "r", Client: "p", Key: key})
	if seq > 0 {
		s.h.Add(Event{Op: OpAck, Room: "r", Client: "p", Key: key, Epoch: epoch, Seq: seq})
	}
	return s
}

func (s *script) joined(sub, epoch string, seq uint64, reset bool) *script {
	s.h.Add(Event{Op: OpJoined, Room: "r", Client: sub, Node: "n1", Epoch: epoch, Seq: seq, Reset: reset})
	return s
}

// deliver records events delivered to sub: "k@seq" each.
func (s *script) deliver(sub string, evs ...string) *script {
	for _, ev := range evs {
		var key string
		var seq uint64
		if _, err := fmt.Sscanf(strings.Replace(ev, "@", " ", 1), "%s %d", &key, &seq); err != nil {
			panic(err)
		}
		s.h.Add(Event{Op: OpDeliver, Room: "r", Client: sub, Node: "n1", Key: key, Seq: seq})
	}
	return s
}

func (s *script) final(node, epoch string, seq uint64, keys ...string) *script {
	f := Final{Node: node, Epoch: epoch, Seq: seq}
	for i, k := range keys {
		f.Entries = append(f.Entries, Entry{Seq: seq - uint64(len(keys)) + uint64(i) + 1, Key: k})
	}
	s.h.AddFinal("r", f)
	return s
}

// clean is a history without anomalies: three acknowledged messages, two
// subscribers (one of which reconnects and resumes), two final histories.
func clean() *script {
	s := newScript().joined("a", "e1", 0, true).joined("b", "e1", 0, true)
	s.pub("k1", "e1", 1).pub("k2", "e1", 2).pub("k3", "e1", 3)
	s.deliver("a", "k1@1", "k2@2", "k3@3")
	s.deliver("b", "k1@1")
	s.h.Add(Event{Op: OpReconnect, Room: "r", Client: "b", Node: "n2"})
	s.deliver("b", "k2@2", "k3@3").joined("b", "e1", 3, false)
	return s.final("n1", "e1", 3, "k1", "k2", "k3").final("n2", "e1", 3, "k2", "k3")
}

func TestCheckClean(t *testing.T) {
	s := clean().h.Check()
	if err := s.Err(); err != nil || !s.OK() {
		t.Fatalf("a clean history: %v", err)
	}
	r := s.Rooms[0]
	if r.Published != 3 || r.Acked != 3 || r.Delivered != 6 || r.Subscribers != 2 || r.Unacked != 0 {
		t.Errorf("counts: %s", r.String())
	}
}

func TestCheckAnomalies(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *script
		want map[string]int
	}{{
		name: "acknowledged beyond the end",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).
			deliver("a", "k1@1").final("n1", "e1", 1, "k1"),
		want: map[string]int{AnomalyLost: 1},
	}, {
		name: "acknowledged then replaced at its seq",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).
			deliver("a", "k9@1").final("n1", "e1", 1, "k9"),
		want: map[string]int{AnomalyLost: 1},
	}, {
		name: "lost with the epoch",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).deliver("a", "k1@1").
			joined("a", "e2", 0, true).pub("k2", "e2", 1).deliver("a", "k2@1").final("n1", "e2", 1, "k2"),
		want: map[string]int{AnomalyLost: 1, AnomalyResets: 1, AnomalyEpochChanges: 1},
	}, {
		name: "one key at two seqs",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).
			deliver("a", "k1@1", "k1@2").final("n1", "e1", 2, "k1", "k1"),
		want: map[string]int{AnomalyDuplicates: 1},
	}, {
		name: "one seq twice to a subscriber",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).
			deliver("a", "k1@1", "k2@2", "k2@2").final("n1", "e1", 2, "k1", "k2"),
		want: map[string]int{AnomalyDuplicates: 1},
	}, {
		name: "reordered",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).
			deliver("a", "k2@2", "k1@1").final("n1", "e1", 2, "k1", "k2"),
		want: map[string]int{AnomalyReorders: 1, AnomalyGaps: 1},
	}, {
		name: "a live gap",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).
			deliver("a", "k2@2").final("n1", "e1", 2, "k1", "k2"),
		want: map[string]int{AnomalyGaps: 1, AnomalyLost: 1},
	}, {
		name: "a resume short of the room's seq",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).pub("k3", "e1", 3).
			deliver("a", "k1@1").joined("a", "e1", 2, false).deliver("a", "k3@3").final("n1", "e1", 3, "k1", "k2", "k3"),
		want: map[string]int{AnomalyGaps: 1, AnomalyLost: 1},
	}, {
		name: "an epoch change without reset",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).deliver("a", "k1@1").
			joined("a", "e2", 0, false).final("n1", "e2", 0),
		want: map[string]int{AnomalyGaps: 1, AnomalyEpochChanges: 1, AnomalyLost: 1},
	}, {
		name: "two subscribers disagree",
		s: newScript().joined("a", "e1", 0, true).joined("b", "e1", 0, true).pub("k1", "e1", 1).
			deliver("a", "k1@1").deliver("b", "kx@1"),
		want: map[string]int{AnomalyDivergent: 1, AnomalyLost: 1},
	}, {
		name: "two nodes disagree",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).deliver("a", "k1@1", "k2@2").
			final("n1", "e1", 2, "k1", "k2").final("n2", "e1", 2, "k1", "kx"),
		want: map[string]int{AnomalyDivergent: 1, AnomalyLost: 1},
	}, {
		name: "a seq that went back",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).deliver("a", "k1@1", "k2@2").
			joined("a", "e1", 1, false).final("n1", "e1", 1, "k1"),
		want: map[string]int{AnomalyDivergent: 1, AnomalyLost: 1},
	}, {
		name: "back to an old epoch",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).deliver("a", "k1@1").
			joined("a", "e2", 0, true).pub("k2", "e2", 1).deliver("a", "k2@1").
			joined("a", "e1", 1, true).final("n1", "e1", 1, "k1"),
		want: map[string]int{AnomalyLost: 1, AnomalyResets: 2, AnomalyEpochChanges: 2},
	}, {
		name: "a hole in a node's history",
		s:    hole(),
		want: map[string]int{AnomalyGaps: 1, AnomalyLost: 1},
	}, {
		name: "a node that lost its history",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).deliver("a", "k1@1").
			final("n1", "e1", 1, "k1").final("n2", "e1", 0),
		want: map[string]int{AnomalyDivergent: 1, AnomalyLost: 1},
	}, {
		name: "history that no longer reaches back",
		s: newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).deliver("a", "k1@1", "k2@2").
			final("n1", "e1", 2, "k2"),
		want: map[string]int{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s.h.Check()
			r := s.Rooms[0]
			for _, a := range anomalies {
				if got := r.Count(a); got != tc.want[a] {
					t.Errorf("%s = %d, want %d\n%v", a, got, tc.want[a], r.Err())
				}
			}
			err := s.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Err: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrAnomalies) || s.OK() {
				t.Fatalf("Err = %v, OK = %v", err, s.OK())
			}
			for a := range tc.want {
				if !strings.Contains(err.Error(), a+"=") {
					t.Errorf("Err does not name %s: %v", a, err)
				}
			}
		})
	}
}

// TestCheckSummary: the total adds the rooms up, and names the room of
// each example.
func TestCheckSummary(t *testing.T) {
	h := clean().h
	h.Add(Event{Op: OpPub, Room: "q", Client: "p", Key: "x"})
	h.Add(Event{Op: OpAck, Room: "q", Client: "p", Key: "x", Epoch: "e", Seq: 1})
	h.AddFinal("q", Final{Node: "n1", Epoch: "e"})
	s := h.Check()
	if len(s.Rooms) != 2 || s.Total.Lost != 1 || s.Total.Acked != 4 {
		t.Fatalf("summary:\n%s", s.String())
	}
	if ex := s.Total.Examples[AnomalyLost]; len(ex) != 1 || !strings.HasPrefix(ex[0], "q: key x") {
		t.Errorf("examples: %q", ex)
	}
}

// hole: a node's history lacks seq 2 of 3.
func hole() *script {
	s := newScript().joined("a", "e1", 0, true).pub("k1", "e1", 1).pub("k2", "e1", 2).pub("k3", "e1", 3).
		deliver("a", "k1@1", "k2@2", "k3@3")
	s.h.AddFinal("r", Final{Node: "n1", Epoch: "e1", Seq: 3, Entries: []Entry{{1, "k1"}, {3, "k3"}}})
	return s
}

// TestCheckAckPause: the longest time between two acknowledgements.
func TestCheckAckPause(t *testing.T) {
	h := NewHistory()
	t0 := time.Unix(1000, 0)
	for i, d := range []time.Duration{0, 10 * time.Millisecond, 2 * time.Second, 2*time.Second + 10*time.Millisecond} {
		h.Add(Event{Op: OpAck, Room: "r", Key: fmt.Sprint(i), Epoch: "e", Seq: uint64(i + 1), At: t0.Add(d)})
	}
	if r := h.CheckRoom("r"); r.AckPause != 1990*time.Millisecond {
		t.Errorf("AckPause = %v, want 1.99s", r.AckPause)
	}
}
