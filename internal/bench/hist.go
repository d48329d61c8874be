package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a log-linear (HDR-style) histogram of durations in
// nanoseconds, safe for concurrent Record. Values below 2^subBits are exact;
// above, each power of two is split into 2^subBits buckets, so a quantile is
// within 1/2^subBits (1.6 %) of the true value. It covers up to 2^41 ns
// (about 36 minutes); larger values land in the last bucket.
//
// Recording is a few atomic adds into one of several shards, chosen by the
// caller (a connection's index), so thousands of reader goroutines on a
// couple of cores do not fight over one cache line.
type Histogram struct {
	shards [histShards]histShard
	max    atomic.Int64
	min    atomic.Int64
}

const (
	subBits    = 6
	subCount   = 1 << subBits
	maxExp     = 41 - subBits // values up to 2^41 ns
	histBucket = subCount + (maxExp+1)*subCount
	histShards = 8
)

type histShard struct {
	counts [histBucket]atomic.Int64
	sum    atomic.Int64
	n      atomic.Int64
	_      [64]byte // keep shards' hot words off each other's cache lines
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

func bucketOf(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	if e > maxExp {
		return histBucket - 1
	}
	return subCount + e*subCount + int(v>>e) - subCount
}

// bucketHigh is the highest value that lands in bucket i.
func bucketHigh(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	e := (i - subCount) / subCount
	m := int64((i-subCount)%subCount + subCount)
	return (m+1)<<e - 1
}

// Record adds one value; shard is any small integer (a connection index).
func (h *Histogram) Record(shard int, v time.Duration) {
	n := int64(v)
	if n < 0 {
		n = 0
	}
	s := &h.shards[shard&(histShards-1)]
	s.counts[bucketOf(n)].Add(1)
	s.sum.Add(n)
	s.n.Add(1)
	for {
		m := h.max.Load()
		if n <= m || h.max.CompareAndSwap(m, n) {
			break
		}
	}
	for {
		m := h.min.Load()
		if n >= m || h.min.CompareAndSwap(m, n) {
			break
		}
	}
}

// Snapshot is a histogram's summary.
type Snapshot struct {
	Count int64
	Mean  time.Duration
	Min   time.Duration
	Max   time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
}

// Snapshot summarizes what was recorded so far.
func (h *Histogram) Snapshot() Snapshot {
	var counts [histBucket]int64
	var total, sum int64
	for s := range h.shards {
		sh := &h.shards[s]
		for i := range counts {
			counts[i] += sh.counts[i].Load()
		}
		sum += sh.sum.Load()
	}
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return Snapshot{}
	}
	mx := h.max.Load()
	q := func(p float64) time.Duration {
		rank := int64(math.Ceil(p * float64(total)))
		if rank < 1 {
			rank = 1
		}
		var acc int64
		for i, c := range counts {
			acc += c
			if acc >= rank {
				return time.Duration(min(bucketHigh(i), mx))
			}
		}
		return time.Duration(mx)
	}
	return Snapshot{
		Count: total,
		Mean:  time.Duration(sum / total),
		Min:   time.Duration(h.min.Load()),
		Max:   time.Duration(mx),
		P50:   q(0.50),
		P90:   q(0.90),
		P99:   q(0.99),
		P999:  q(0.999),
	}
}
