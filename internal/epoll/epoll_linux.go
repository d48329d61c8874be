//go:build linux

package epoll

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Add once the set was closed.
var ErrClosed = errors.New("epoll: set closed")

// Set holds sockets in an epoll set, each with an item. One goroutine waits
// on it (Wait); any may add, re-arm or remove sockets, and Stop ends the
// wait from outside through a pipe that is in the set too.
type Set[T any] struct {
	epfd int
	wake [2]int // a byte written to wake[1] makes Wait report stopped
	evs  []unix.EpollEvent

	mu    sync.Mutex
	items map[int32]T // nil once closed
}

// New makes a set whose Wait takes up to batch events at a time.
func New[T any](batch int) (*Set[T], error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	s := &Set[T]{epfd: epfd, evs: make([]unix.EpollEvent, batch), items: make(map[int32]T)}
	if err := unix.Pipe2(s.wake[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.wake[0])}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, s.wake[0], &ev); err != nil {
		s.closeFDs()
		return nil, err
	}
	return s, nil
}

// Add puts a socket and its item in the set, waiting for events (for
// instance EPOLLIN|EPOLLRDHUP, with EPOLLONESHOT to be re-armed by Rearm).
func (s *Set[T]) Add(fd int, item T, events uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items == nil {
		return ErrClosed
	}
	s.items[int32(fd)] = item
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(s.items, int32(fd))
		return err
	}
	return nil
}

// Rearm waits again for events on a socket in the set (after a one-shot
// event). It reports false when the socket is not there.
func (s *Set[T]) Rearm(fd int, events uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[int32(fd)]; !ok {
		return false
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, fd, &ev) == nil
}

// Remove takes a socket out of the set; it must come before the socket is
// closed (its number may then be reused).
func (s *Set[T]) Remove(fd int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items == nil {
		return
	}
	delete(s.items, int32(fd))
	_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Wait waits up to msec milliseconds (-1: until something happens) and
// calls fn for each ready socket still in the set. It returns how many
// events came, and stopped when Stop was called (fn is then not called).
// Only one goroutine waits.
func (s *Set[T]) Wait(msec int, fn func(fd int32, item T)) (n int, stopped bool, err error) {
	for {
		n, err = unix.EpollWait(s.epfd, s.evs, msec)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, false, err
	}
	for _, ev := range s.evs[:n] {
		if ev.Fd == int32(s.wake[0]) {
			return n, true, nil
		}
	}
	for _, ev := range s.evs[:n] {
		s.mu.Lock()
		item, ok := s.items[ev.Fd]
		s.mu.Unlock()
		if ok {
			fn(ev.Fd, item)
		}
	}
	return n, false, nil
}

// Stop makes the waiting goroutine's Wait report stopped.
func (s *Set[T]) Stop() { _, _ = unix.Write(s.wake[1], []byte{1}) }

// Close closes the set (not its sockets) and returns the items still in it.
// The waiting goroutine calls it once Wait reported stopped or failed.
func (s *Set[T]) Close() map[int32]T {
	s.mu.Lock()
	left := s.items
	s.items = nil
	s.closeFDs()
	s.mu.Unlock()
	return left
}

func (s *Set[T]) closeFDs() {
	_ = unix.Close(s.epfd)
	_ = unix.Close(s.wake[0])
	_ = unix.Close(s.wake[1])
}
