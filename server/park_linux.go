//go:build linux

package server

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/roomd/roomd/internal/epoll"
)

// canPark reports that idle sessions can wait without a goroutine here.
const canPark = true

// parker holds idle sessions' sockets in an epoll set, so that an idle
// connection keeps no reader goroutine (and no stack) at all: when bytes
// arrive, the session gets a goroutine again and reads them. One goroutine
// waits on the set, started with the first parked session and ended by
// Shutdown.
type parker struct {
	srv *Server

	mu      sync.Mutex
	set     *epoll.Set[parkee] // nil until the first park, and once stopped
	done    chan struct{}      // closed when the loop ended; set when started or stopped
	stopped bool               // the set could not be made, or Shutdown ran: sessions keep their goroutine
}

// parkEvents: readable, or the peer gone; one shot, re-armed by rearm.
const parkEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// park puts a session's (or stream's) socket in the set; false when it
// cannot (the caller keeps reading in its goroutine, which ends after a
// true).
func (p *parker) park(ss parkee, fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked() && p.set.Add(fd, ss, parkEvents) == nil
}

// rearm waits again for a parked session's socket (its one-shot event
// fired and was handled without waking it).
func (p *parker) rearm(fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set != nil && p.set.Rearm(fd, parkEvents)
}

// unpark takes a socket out of the set; it must be before the socket closes.
func (p *parker) unpark(fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set != nil {
		p.set.Remove(fd)
	}
}

// startLocked makes the set and its goroutine on first use. p.mu held.
func (p *parker) startLocked() bool {
	if p.set != nil {
		return true
	}
	if p.stopped {
		return false
	}
	set, err := epoll.New[parkee](128)
	if err != nil {
		p.stopped = true
		return false
	}
	p.set = set
	p.done = make(chan struct{})
	p.srv.wg.Add(1)
	go p.loop(set, p.done)
	return true
}

// stop ends the loop (Shutdown wakes the parked sessions first); the set
// cannot be used again.
func (p *parker) stop() {
	p.mu.Lock()
	set, done := p.set, p.done
	p.stopped = true
	p.mu.Unlock()
	if set != nil {
		set.Stop()
		<-done
	}
}

func (p *parker) loop(set *epoll.Set[parkee], done chan struct{}) {
	defer p.srv.wg.Done()
	defer close(done)
	for {
		_, stopped, err := set.Wait(-1, func(_ int32, ss parkee) { ss.parkEvent() })
		if stopped || err != nil {
			p.mu.Lock()
			p.set, p.stopped = nil, true
			left := set.Close()
			p.mu.Unlock()
			for _, ss := range left {
				ss.parkStopped()
			}
			return
		}
	}
}
