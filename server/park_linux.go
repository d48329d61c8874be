//go:build linux

package server

import (
	"sync"
	"syscall"
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

	mu       sync.Mutex
	epfd     int
	wake     [2]int // a pipe: a byte written to wake[1] ends the loop
	sessions map[int32]parkee
	done     chan struct{}
	failed   bool // the set could not be made: sessions keep their goroutine
}

// park puts a session's (or stream's) socket in the set; false when it
// cannot (the caller keeps reading in its goroutine, which ends after a
// true).
func (p *parker) park(ss parkee, fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.startLocked() {
		return false
	}
	p.sessions[int32(fd)] = ss
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(p.sessions, int32(fd))
		return false
	}
	return true
}

// rearm waits again for a parked session's socket (its one-shot event
// fired and was handled without waking it). ss.mu held.
func (p *parker) rearm(fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions == nil {
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev) == nil
}

// unpark takes a socket out of the set; it must be before the socket closes.
func (p *parker) unpark(fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions == nil {
		return
	}
	delete(p.sessions, int32(fd))
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
}

// startLocked makes the set and its goroutine on first use. p.mu held.
func (p *parker) startLocked() bool {
	if p.sessions != nil {
		return true
	}
	if p.failed || p.done != nil { // failed, or stopped
		return false
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		p.failed = true
		return false
	}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(epfd)
		p.failed = true
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(p.wake[0])
		_ = syscall.Close(p.wake[1])
		p.failed = true
		return false
	}
	p.epfd = epfd
	p.sessions = make(map[int32]parkee)
	p.done = make(chan struct{})
	p.srv.wg.Add(1)
	go p.loop(p.done)
	return true
}

// stop ends the loop once no session is parked (Shutdown wakes them all
// first); the set cannot be used again.
func (p *parker) stop() {
	p.mu.Lock()
	running := p.sessions != nil
	done := p.done
	if !running && done == nil {
		p.done = make(chan struct{}) // never start
		close(p.done)
	}
	p.mu.Unlock()
	if running {
		_, _ = syscall.Write(p.wake[1], []byte{1})
		<-done
	}
}

func (p *parker) loop(done chan struct{}) {
	defer p.srv.wg.Done()
	defer close(done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		stop := err != nil
		for i := 0; i < n && !stop; i++ {
			fd := events[i].Fd
			if fd == int32(p.wake[0]) {
				stop = true
				break
			}
			p.mu.Lock()
			ss := p.sessions[fd]
			p.mu.Unlock()
			if ss != nil {
				ss.parkEvent()
			}
		}
		if stop {
			p.mu.Lock()
			left := p.sessions
			p.sessions = nil
			_ = syscall.Close(p.epfd)
			_ = syscall.Close(p.wake[0])
			_ = syscall.Close(p.wake[1])
			p.mu.Unlock()
			for _, ss := range left {
				ss.parkStopped()
			}
			return
		}
	}
}
