//go:build linux

package epoll

import (
	"syscall"
	"testing"
)

func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestSetEventsRearmRemoveStop(t *testing.T) {
	s, err := New[string](8)
	if err != nil {
		t.Fatal(err)
	}
	a, peerA := socketpair(t)
	b, _ := socketpair(t)
	if err := s.Add(a, "a", syscall.EPOLLIN|syscall.EPOLLONESHOT); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(b, "b", syscall.EPOLLIN); err != nil {
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
	syscall.Write(peerA, []byte("x"))
	if got, _ := wait(1000); len(got) != 1 || got[0] != "a" {
		t.Fatalf("got %v, want [a]", got)
	}
	if got, _ := wait(20); len(got) != 0 { // one shot: not again until re-armed
		t.Fatalf("got %v before rearm", got)
	}
	if !s.Rearm(a, syscall.EPOLLIN|syscall.EPOLLONESHOT) {
		t.Fatal("rearm failed")
	}
	if got, _ := wait(1000); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after rearm got %v, want [a]", got)
	}
	s.Remove(a)
	if s.Rearm(a, syscall.EPOLLIN) {
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
	if err := s.Add(a, "a", syscall.EPOLLIN); err != ErrClosed {
		t.Fatalf("Add after Close: %v", err)
	}
}
