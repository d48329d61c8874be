package placement

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func memberNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i+1)
	}
	return out
}

func TestPartitionOfIsFNV1a(t *testing.T) {
	for _, name := range []string{"", "a", "chat:lobby", "room-42", "ünïcødé", "x\x00y"} {
		h := fnv.New64a()
		h.Write([]byte(name))
		for _, parts := range []int{1, 7, 256, 1024} {
			if got, want := PartitionOf(name, parts), int(h.Sum64()%uint64(parts)); got != want {
				t.Errorf("PartitionOf(%q, %d) = %d, want %d", name, parts, got, want)
			}
		}
	}
	if got, want := PartitionOf("chat:lobby", 0), PartitionOf("chat:lobby", DefaultPartitions); got != want {
		t.Errorf("PartitionOf(_, 0) = %d, want the default's %d", got, want)
	}
}

func TestPartitionOfDistribution(t *testing.T) {
	const rooms = 200_000
	counts := make([]int, DefaultPartitions)
	for i := range rooms {
		counts[PartitionOf(fmt.Sprintf("chat:room-%d", i), DefaultPartitions)]++
	}
	mean := float64(rooms) / DefaultPartitions
	chi2, lo, hi := 0.0, counts[0], counts[0]
	for _, c := range counts {
		d := float64(c) - mean
		chi2 += d * d / mean
		lo, hi = min(lo, c), max(hi, c)
	}
	// 255 degrees of freedom: mean 255, sd ≈ 22.6. 360 is beyond 4.5 sd.
	t.Logf("%d sequential names over %d partitions: min %d, max %d (mean %.0f), chi² %.1f",
		rooms, DefaultPartitions, lo, hi, mean, chi2)
	if chi2 > 360 {
		t.Errorf("chi² = %.1f, the partitions are not evenly used", chi2)
	}
}

func TestTableDeterministic(t *testing.T) {
	members := memberNames(7)
	want := NewTable(members, DefaultPartitions, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, shuffled[0]) // a duplicate counts once
		got := NewTable(shuffled, DefaultPartitions, 2)
		if got.Version() != want.Version() {
			t.Fatalf("version %x for %v, want %x", got.Version(), shuffled, want.Version())
		}
		for p := range DefaultPartitions {
			if got.Owner(p) != want.Owner(p) || !slices.Equal(got.Replicas(p), want.Replicas(p)) {
				t.Fatalf("partition %d: %s %v, want %s %v", p, got.Owner(p), got.Replicas(p), want.Owner(p), want.Replicas(p))
			}
		}
	}
	if !slices.Equal(want.Members(), members) {
		t.Errorf("Members() = %v, want sorted %v", want.Members(), members)
	}
	// Another member set, another version; so does another shape.
	if NewTable(memberNames(6), DefaultPartitions, 2).Version() == want.Version() {
		t.Error("a different member set has the same version")
	}
	if NewTable(members, 128, 2).Version() == want.Version() {
		t.Error("a different partition count has the same version")
	}
	if NewTable([]string{"ab"}, 8, 0).Version() == NewTable([]string{"a", "b"}, 8, 0).Version() {
		t.Error(`{"ab"} and {"a","b"} have the same version`)
	}
}

func TestTableShape(t *testing.T) {
	empty := NewTable(nil, 0, 2)
	if empty.Partitions() != DefaultPartitions {
		t.Errorf("Partitions() = %d, want %d", empty.Partitions(), DefaultPartitions)
	}
	if p, owner := empty.OwnerOf("r"); owner != "" || p != PartitionOf("r", DefaultPartitions) {
		t.Errorf("empty table: OwnerOf = %d %q", p, owner)
	}
	if r := empty.Replicas(0); len(r) != 0 {
		t.Errorf("empty table: Replicas = %v", r)
	}

	one := NewTable([]string{"solo"}, 16, 2)
	for p := range 16 {
		if one.Owner(p) != "solo" || len(one.Replicas(p)) != 0 {
			t.Fatalf("one member: partition %d owner %q replicas %v", p, one.Owner(p), one.Replicas(p))
		}
	}
	if got := one.Owned("solo"); len(got) != 16 {
		t.Errorf("Owned(solo) = %d partitions, want 16", len(got))
	}

	tb := NewTable(memberNames(5), 64, 2)
	for _, p := range []int{-1, 64} {
		if tb.Owner(p) != "" || tb.Replicas(p) != nil {
			t.Errorf("partition %d out of range: %q %v", p, tb.Owner(p), tb.Replicas(p))
		}
	}
	owned := 0
	for _, n := range memberNames(5) {
		owned += len(tb.Owned(n))
	}
	if owned != 64 || tb.Owned("stranger") != nil {
		t.Errorf("Owned over all members = %d, want 64", owned)
	}
	for p := range 64 {
		row := append([]string{tb.Owner(p)}, tb.Replicas(p)...)
		if len(row) != 3 || len(slices.Compact(slices.Sorted(slices.Values(row)))) != 3 {
			t.Fatalf("partition %d: owner and replicas %v are not 3 distinct members", p, row)
		}
	}
	// Replicas are capped at members-1, and the slice is the caller's.
	two := NewTable([]string{"a", "b"}, 8, 5)
	r := two.Replicas(3)
	if len(r) != 1 || r[0] == two.Owner(3) {
		t.Fatalf("two members, 5 replicas asked: %q %v", two.Owner(3), r)
	}
	r[0] = "mutated"
	if two.Replicas(3)[0] == "mutated" {
		t.Error("Replicas returned the table's own storage")
	}
}

// spread returns the largest relative deviation of a member's owned count
// from partitions/N.
func spread(tb *Table) (worst float64, counts map[string]int) {
	counts = map[string]int{}
	for p := range tb.Partitions() {
		counts[tb.Owner(p)]++
	}
	mean := float64(tb.Partitions()) / float64(len(tb.Members()))
	for _, m := range tb.Members() {
		worst = max(worst, math.Abs(float64(counts[m])-mean)/mean)
	}
	return worst, counts
}

func TestTableBalance(t *testing.T) {
	for n := 3; n <= 10; n++ {
		tb := NewTable(memberNames(n), DefaultPartitions, 0)
		worst, counts := spread(tb)
		lo, hi := DefaultPartitions, 0
		for _, c := range counts {
			lo, hi = min(lo, c), max(hi, c)
		}
		t.Logf("%2d nodes: owned %d..%d per node (ideal %.1f), worst deviation %.0f%%",
			n, lo, hi, float64(DefaultPartitions)/float64(n), worst*100)
		if worst > 0.35 {
			t.Errorf("%d nodes: a node's share deviates %.0f%% from partitions/N (limit 35%%): %v", n, worst*100, counts)
		}
	}
}

// TestTableBalanceRandomNames measures the balance over many random member
// sets against an ideal uniform assignment of the same shape. Rendezvous
// hashing gives each node a binomial share of the partitions, so at 10 nodes
// a ±35% band is only ~1.9 sd wide and about half of all member sets leave
// it even with a perfect hash: what the test holds is that the table is no
// worse than ideal, i.e. the hash is not biased.
func TestTableBalanceRandomNames(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const trials = 1000
	for _, n := range []int{3, 5, 8, 10} {
		var hrw, ideal struct {
			sum  float64
			over int
		}
		mean := float64(DefaultPartitions) / float64(n)
		for range trials {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("roomd-%x", rng.Uint64())
			}
			worst, _ := spread(NewTable(names, DefaultPartitions, 0))
			hrw.sum += worst
			if worst > 0.35 {
				hrw.over++
			}

			counts := make([]int, n)
			for range DefaultPartitions {
				counts[rng.IntN(n)]++
			}
			worst = 0
			for _, c := range counts {
				worst = max(worst, math.Abs(float64(c)-mean)/mean)
			}
			ideal.sum += worst
			if worst > 0.35 {
				ideal.over++
			}
		}
		t.Logf("%2d random nodes, %d sets: mean worst deviation %.1f%% (ideal %.1f%%), over 35%% in %.1f%% of sets (ideal %.1f%%)",
			n, trials, hrw.sum/trials*100, ideal.sum/trials*100,
			float64(hrw.over)/trials*100, float64(ideal.over)/trials*100)
		if d := (hrw.sum - ideal.sum) / trials; d > 0.03 {
			t.Errorf("%d nodes: mean worst deviation %.1f points above a uniform assignment", n, d*100)
		}
	}
}

func TestTableMinimalMovement(t *testing.T) {
	three := NewTable(memberNames(3), DefaultPartitions, 0)
	four := NewTable(memberNames(4), DefaultPartitions, 0)
	moves := Moves(three, four)
	for _, mv := range moves {
		if mv.To != "node-4" || mv.From == "" {
			t.Errorf("adding node-4 moved partition %d from %q to %q", mv.Partition, mv.From, mv.To)
		}
	}
	if got := len(four.Owned("node-4")); got != len(moves) {
		t.Errorf("node-4 owns %d partitions, but %d moved", got, len(moves))
	}
	frac := float64(len(moves)) / DefaultPartitions
	t.Logf("3 -> 4 nodes: %d of %d partitions moved (%.0f%%, ideal 25%%)", len(moves), DefaultPartitions, frac*100)
	if frac < 0.15 || frac > 0.35 {
		t.Errorf("adding a 4th node moved %.0f%% of the partitions, want about 25%%", frac*100)
	}

	// Removing a node moves only what it owned, to the survivors.
	for _, gone := range memberNames(4) {
		rest := slices.DeleteFunc(memberNames(4), func(s string) bool { return s == gone })
		after := NewTable(rest, DefaultPartitions, 0)
		moves := Moves(four, after)
		if want := four.Owned(gone); len(moves) != len(want) {
			t.Errorf("removing %s moved %d partitions, it owned %d", gone, len(moves), len(want))
		}
		for _, mv := range moves {
			if mv.From != gone || mv.To == "" || mv.To == gone {
				t.Errorf("removing %s moved partition %d from %q to %q", gone, mv.Partition, mv.From, mv.To)
			}
		}
		t.Logf("4 -> 3 nodes (without %s): %d partitions moved", gone, len(moves))
	}

	// Replicas are stable too: a survivor keeps being the next in line.
	for p := range DefaultPartitions {
		if four.Owner(p) == "node-4" {
			continue
		}
		if three.Owner(p) != four.Owner(p) {
			t.Fatalf("partition %d changed owner without going to node-4", p)
		}
	}
}

func TestMoves(t *testing.T) {
	tb := NewTable([]string{"a", "b"}, 8, 0)
	all := Moves(nil, tb)
	if len(all) != 8 {
		t.Fatalf("Moves(nil, t) = %d moves, want 8", len(all))
	}
	for i, mv := range all {
		if mv.Partition != i || mv.From != "" || mv.To != tb.Owner(i) {
			t.Errorf("Moves(nil, t)[%d] = %+v", i, mv)
		}
	}
	if got := Moves(tb, NewTable([]string{"b", "a"}, 8, 1)); len(got) != 0 {
		t.Errorf("same members: %d moves", len(got))
	}
	if got := Moves(tb, nil); len(got) != 8 || got[0].To != "" {
		t.Errorf("Moves(t, nil) = %v", got)
	}
	if got := Moves(nil, nil); got != nil {
		t.Errorf("Moves(nil, nil) = %v", got)
	}
}

func BenchmarkOwnerOf(b *testing.B) {
	for _, n := range []int{1, 3, 10, 100} {
		tb := NewTable(memberNames(n), DefaultPartitions, 2)
		rooms := make([]string, 1024)
		for i := range rooms {
			rooms[i] = fmt.Sprintf("chat:room-%d", i)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, owner := tb.OwnerOf(rooms[i&1023])
				if owner == "" {
					b.Fatal("no owner")
				}
				i++
			}
		})
	}
}

func BenchmarkNewTable(b *testing.B) {
	for _, n := range []int{3, 10, 100} {
		names := memberNames(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NewTable(names, DefaultPartitions, 2)
			}
		})
	}
}
