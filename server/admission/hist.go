package admission

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// delayHist counts delays in buckets four to an octave, from 16 µs to
// about 4 s (beyond: the last bucket), with atomic adds only, so that
// writers and readers on every core record into it without a lock.
type delayHist struct {
	n       atomic.Uint32
	buckets [histBuckets]atomic.Uint32
}

const (
	histUnit    = 14 // bucket width below 64 µs: 2^14 ns
	histBuckets = 68
)

// bucketOf is d's bucket.
func bucketOf(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	n := uint64(d) >> histUnit
	if n < 4 {
		return int(n)
	}
	l := bits.Len64(n)
	sub := int(n>>(l-3)) & 3
	return min(histBuckets-1, (l-2)*4+sub)
}

// bucketLow is the smallest delay of bucket i.
func bucketLow(i int) time.Duration {
	if i < 4 {
		return time.Duration(i) << histUnit
	}
	l, sub := i/4+2, i%4
	return time.Duration(4+sub) << (l - 3) << histUnit
}

func (h *delayHist) observe(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	h.n.Add(1)
}

// take returns the q-quantile of the delays recorded (the middle of its
// bucket; 0 when none) and resets the counts.
func (h *delayHist) take(q float64) time.Duration {
	n := h.n.Swap(0)
	if n == 0 {
		return 0
	}
	var counts [histBuckets]uint32
	total := uint32(0)
	for i := range h.buckets {
		counts[i] = h.buckets[i].Swap(0)
		total += counts[i]
	}
	rank := uint32(q * float64(total))
	seen := uint32(0)
	for i, c := range counts {
		seen += c
		if c > 0 && seen > rank {
			if i+1 >= histBuckets {
				return bucketLow(i)
			}
			return (bucketLow(i) + bucketLow(i+1)) / 2
		}
	}
	return 0
}
