package placement

import "slices"

// DefaultPartitions is the number of partitions rooms are spread over. It
// is a constant of a cluster: every node must use the same number.
const DefaultPartitions = 256

// PartitionOf returns the partition of a room: the FNV-1a 64 hash of its
// name, modulo partitions. partitions below 1 means DefaultPartitions.
func PartitionOf(room string, partitions int) int {
	if partitions < 1 {
		partitions = DefaultPartitions
	}
	return int(HashString(room) % uint64(partitions))
}

// Table says which node owns each partition and which nodes replicate it.
// It is a pure function of (members, partitions, replicas): every node that
// sees the same serving members computes the same table. Ownership is by
// rendezvous (highest random weight) hashing: for each partition every
// member gets a score from a hash of (partition, member name); the highest
// score owns the partition and the next ones are its replicas. A member
// joining takes about 1/N of the partitions, each from its previous owner;
// a member leaving gives away only the partitions it owned.
//
// A Table is immutable once built and safe for concurrent use.
type Table struct {
	members    []string // sorted, unique
	partitions int
	replicas   int      // replicas per partition, at most len(members)-1
	ranked     []uint32 // partitions × (1+replicas) indexes into members, best first
	version    uint64
}

// NewTable builds the table for the names of the serving members. The order
// of members does not matter and duplicates count once. partitions below 1
// means DefaultPartitions; replicas is how many members after the owner each
// partition lists (negative means none), capped at len(members)-1.
func NewTable(members []string, partitions, replicas int) *Table {
	if partitions < 1 {
		partitions = DefaultPartitions
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	replicas = max(0, min(replicas, len(ms)-1))
	t := &Table{members: ms, partitions: partitions, replicas: replicas}
	t.version = tableVersion(ms, partitions, replicas)
	if len(ms) == 0 {
		return t
	}

	keys := make([]uint64, len(ms))
	for i, name := range ms {
		keys[i] = HashString(name)
	}
	width := 1 + replicas
	t.ranked = make([]uint32, partitions*width)
	type scored struct {
		score uint64
		idx   uint32
	}
	cand := make([]scored, len(ms))
	for p := range partitions {
		pk := Mix(uint64(p) + 0x9e3779b97f4a7c15)
		for i, k := range keys {
			cand[i] = scored{score: Mix(k ^ pk), idx: uint32(i)}
		}
		// Highest score first; equal scores (practically never) fall back
		// to the name order, so the result stays deterministic.
		slices.SortFunc(cand, func(a, b scored) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return int(a.idx) - int(b.idx)
		})
		row := t.ranked[p*width : (p+1)*width]
		for j := range row {
			row[j] = cand[j].idx
		}
	}
	return t
}

// Partitions returns the number of partitions.
func (t *Table) Partitions() int { return t.partitions }

// ReplicaCount returns how many members each partition lists after its
// owner: the replicas asked for, capped at the member count minus one.
func (t *Table) ReplicaCount() int { return t.replicas }

// Members returns the members the table was built from, sorted by name.
func (t *Table) Members() []string { return slices.Clone(t.members) }

// Version identifies the table: a hash of the sorted member list, the
// partition count and the replica count. Nodes with the same view of the
// serving members have the same version.
func (t *Table) Version() uint64 { return t.version }

// Owner returns the owner of partition p, or "" when the table has no
// members or p is out of range.
func (t *Table) Owner(p int) string {
	if len(t.members) == 0 || p < 0 || p >= t.partitions {
		return ""
	}
	return t.members[t.ranked[p*(1+t.replicas)]]
}

// Replicas returns the replicas of partition p, best first, excluding the
// owner: a fresh slice the caller may keep. It is empty when the table has
// fewer than two members or p is out of range.
func (t *Table) Replicas(p int) []string {
	if t.replicas == 0 || p < 0 || p >= t.partitions {
		return nil
	}
	width := 1 + t.replicas
	row := t.ranked[p*width+1 : (p+1)*width]
	out := make([]string, len(row))
	for i, idx := range row {
		out[i] = t.members[idx]
	}
	return out
}

// OwnerOf returns a room's partition and that partition's owner ("" when
// the table has no members).
func (t *Table) OwnerOf(room string) (partition int, owner string) {
	p := PartitionOf(room, t.partitions)
	return p, t.Owner(p)
}

// Owned returns, in ascending order, the partitions whose owner is node.
func (t *Table) Owned(node string) []int {
	idx, ok := slices.BinarySearch(t.members, node)
	if !ok {
		return nil
	}
	var out []int
	width := 1 + t.replicas
	for p := range t.partitions {
		if t.ranked[p*width] == uint32(idx) {
			out = append(out, p)
		}
	}
	return out
}

// Move is a partition whose owner changed between two tables. From is ""
// when the partition had no owner; To is "" when it has none now.
type Move struct {
	Partition int
	From, To  string
}

// Moves lists, in partition order, the partitions whose owner differs
// between old and new. A nil table has no owner for any partition, so
// Moves(nil, t) lists every partition of t. When the tables' partition
// counts differ, the larger count is walked and a partition beyond a
// table's range has no owner there.
func Moves(old, new *Table) []Move {
	n := 0
	if old != nil {
		n = old.partitions
	}
	if new != nil {
		n = max(n, new.partitions)
	}
	var out []Move
	for p := range n {
		var from, to string
		if old != nil {
			from = old.Owner(p)
		}
		if new != nil {
			to = new.Owner(p)
		}
		if from != to {
			out = append(out, Move{Partition: p, From: from, To: to})
		}
	}
	return out
}

// HashString is FNV-1a 64 of s (the same as hash/fnv's New64a), without
// allocating.
func HashString(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// Mix is the 64-bit finalizer of MurmurHash3 (fmix64): every input bit
// affects every output bit, so scores built from FNV keys are well spread.
func Mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// tableVersion hashes the sorted member list with the table's shape.
func tableVersion(members []string, partitions, replicas int) uint64 {
	h := HashString("")
	add := func(b byte) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	for _, m := range members {
		for i := 0; i < len(m); i++ {
			add(m[i])
		}
		add(0) // separator: {"ab"} and {"a","b"} differ
	}
	for _, v := range []int{partitions, replicas} {
		for i := range 8 {
			add(byte(uint64(v) >> (8 * i)))
		}
	}
	return h
}
