//go:build linux

package epoll

import (
	"testing"

	"golang.org/x/sys/unix"
)

func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestSetEventsRearmRemoveStop(t *testing.T) {
	s, err := New[string](8)
	if err != nil {
		t.Fatal(err)
	}
	a, peerA := socketpair(t)
	b, _ := socketpair(t)
	if err := s.Add(a, "a", unix.EPOLLIN|unix.EPOLLONESHOT); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(b, "b", unix.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	wait := func(msec int) (got []string, stopped bool) {
		t.Helper()
		_, stopped, err := s.Wait(msec, func(_ int32, item string) { got = append(got, item) })
		if err != nil {
			t.Fatal(err)
		}
		return got, stopped
	}
	unix.Write(peerA, []byte("x"))
	if got, _ := wait(1000); len(got) != 1 || got[0] != "a" {
		t.Fatalf("got %v, want [a]", got)
	}
	if got, _ := wait(20); len(got) != 0 { // one shot: not again until re-armed
		t.Fatalf("got %v before rearm", got)
	}
	if !s.Rearm(a, unix.EPOLLIN|unix.EPOLLONESHOT) {
		t.Fatal("rearm failed")
	}
	if got, _ := wait(1000); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after rearm got %v, want [a]", got)
	}
	s.Remove(a)
	if s.Rearm(a, unix.EPOLLIN) {
		t.Fatal("rearm of a removed socket")
	}
	s.Stop()
	if got, stopped := wait(1000); !stopped || len(got) != 0 {
		t.Fatalf("after Stop: %v, stopped %v", got, stopped)
	}
	left := s.Close()
	if len(left) != 1 || left[int32(b)] != "b" {
		t.Fatalf("left %v, want b", left)
	}
	if err := s.Add(a, "a", unix.EPOLLIN); err != ErrClosed {
		t.Fatalf("Add after Close: %v", err)
	}
}
