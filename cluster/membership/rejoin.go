package membership

import "time"

// How a node keeps trying its seeds: with backoff while it is alone, at a
// steady period once it has company.

// rejoinFirst is the first delay between tries of the seeds while the node
// has joined nobody.
const rejoinFirst = 200 * time.Millisecond

// rejoinBackoff yields the delays between tries of the seeds: from
// rejoinFirst (or steady, if shorter) doubling up to steady while the node
// is alone, and steady once it has joined; a node left alone again starts
// over from the first delay.
type rejoinBackoff struct {
	steady time.Duration
	next   time.Duration
}

func newRejoinBackoff(steady time.Duration) *rejoinBackoff {
	return &rejoinBackoff{steady: steady, next: min(rejoinFirst, steady)}
}

// delay returns how long to wait before the next try, given whether the
// node has joined anyone by now.
func (b *rejoinBackoff) delay(joined bool) time.Duration {
	if joined {
		b.next = min(rejoinFirst, b.steady)
		return b.steady
	}
	d := b.next
	b.next = min(2*b.next, b.steady)
	return d
}

// runRejoin calls try after each delay of a rejoinBackoff until stop is
// closed; try says whether the node has joined anyone (after its try).
// joined is the state before the first wait.
func runRejoin(stop <-chan struct{}, steady time.Duration, joined bool, try func() bool) {
	b := newRejoinBackoff(steady)
	t := time.NewTimer(b.delay(joined))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			t.Reset(b.delay(try()))
		}
	}
}
