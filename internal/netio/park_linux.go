//go:build linux

package netio

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/roomd/roomd/internal/epoll"
)

// CanPark reports that idle connections can wait without a goroutine here.
const CanPark = true

// Parker holds idle connections' sockets in an epoll set, so that an idle
// connection keeps no reader goroutine (and no stack) at all: when bytes
// arrive, or the peer goes, its Parkee hears of it and gets a goroutine
// again. One goroutine waits on the set, started with the first parked
// socket and ended by Stop.
type Parker struct {
	// WG counts the parker's goroutine. Set before use.
	WG *sync.WaitGroup

	mu      sync.Mutex
	set     *epoll.Set[Parkee] // nil until the first park, and once stopped
	done    chan struct{}      // closed when the loop ended; set when started or stopped
	stopped bool               // the set could not be made, or Stop ran: connections keep their goroutine
}

// parkEvents: readable, or the peer gone; one shot, re-armed by Rearm.
const parkEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// Park puts a connection's socket in the set; false when it cannot (the
// caller keeps reading in its goroutine, which ends after a true).
func (p *Parker) Park(x Parkee, fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked() && p.set.Add(fd, x, parkEvents) == nil
}

// Rearm waits again for a parked socket (its one-shot event fired and was
// handled without waking its connection).
func (p *Parker) Rearm(fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set != nil && p.set.Rearm(fd, parkEvents)
}

// Unpark takes a socket out of the set; it must be before the socket
// closes.
func (p *Parker) Unpark(fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set != nil {
		p.set.Remove(fd)
	}
}

// startLocked makes the set and its goroutine on first use. p.mu held.
func (p *Parker) startLocked() bool {
	if p.set != nil {
		return true
	}
	if p.stopped {
		return false
	}
	set, err := epoll.New[Parkee](128)
	if err != nil {
		p.stopped = true
		return false
	}
	p.set = set
	p.done = make(chan struct{})
	p.WG.Add(1)
	go p.loop(set, p.done)
	return true
}

// Stop ends the loop; the connections still parked hear ParkStopped. The
// set cannot be used again.
func (p *Parker) Stop() {
	p.mu.Lock()
	set, done := p.set, p.done
	p.stopped = true
	p.mu.Unlock()
	if set != nil {
		set.Stop()
		<-done
	}
}

func (p *Parker) loop(set *epoll.Set[Parkee], done chan struct{}) {
	defer p.WG.Done()
	defer close(done)
	for {
		_, stopped, err := set.Wait(-1, func(_ int32, x Parkee) { x.ParkEvent() })
		if stopped || err != nil {
			p.mu.Lock()
			p.set, p.stopped = nil, true
			left := set.Close()
			p.mu.Unlock()
			for _, x := range left {
				x.ParkStopped()
			}
			return
		}
	}
}
