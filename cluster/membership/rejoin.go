package membership

import (
	"math/rand/v2"
	"time"
)

// How a node keeps trying its seeds: with backoff while it is alone, at a
// steady period once it has company. Each try after the first also joins
// one member that failed (was declared dead, not left) in the last
// reconnectFor, as serf's reconnect does: two nodes that declared each
// other dead (a partition, a long pause) no longer gossip, probe or sync
// with each other, and without it only their seeds could bring them
// together again, if any is alive.

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

// reconnectFor is how long a failed member is tried again.
const reconnectFor = time.Hour

// failed is a member that failed: its gossip address and when it failed.
type failed struct {
	addr  string
	since time.Time
}

// noteFailedLocked records, for reconnecting, what memberlist says of a
// member: one declared gone is one to try again, unless it said it was
// leaving (its state leaving: memberlist's own word for a graceful leave is
// not passed on to its delegates); one alive again is not. m.mu held.
func (m *Membership) noteFailedLocked(name, addr string, alive, leaving bool, now time.Time) {
	switch {
	case name == m.cfg.NodeName:
	case alive || leaving:
		delete(m.failed, name)
	default:
		if _, ok := m.failed[name]; !ok {
			m.failed[name] = failed{addr: addr, since: now}
		}
	}
}

// reconnectTarget returns the gossip address of one member that failed in
// the last reconnectFor, chosen at random, and forgets those that failed
// before; "" when there is none.
func (m *Membership) reconnectTarget(now time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var addrs []string
	for name, f := range m.failed {
		if now.Sub(f.since) > reconnectFor {
			delete(m.failed, name)
			continue
		}
		addrs = append(addrs, f.addr)
	}
	if len(addrs) == 0 {
		return ""
	}
	return addrs[rand.IntN(len(addrs))]
}
