//go:build linux

package netio

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
)

type testParkee struct{ events, stopped atomic.Int32 }

func (p *testParkee) ParkEvent()   { p.events.Add(1) }
func (p *testParkee) ParkStopped() { p.stopped.Add(1) }

// A parked socket's bytes reach its parkee once (one shot) until it is
// re-armed; an unparked socket's bytes reach nobody; Stop tells the ones
// still parked, and ends the parker's goroutine.
func TestParkAndUnpark(t *testing.T) {
	var wg sync.WaitGroup
	p := &Parker{WG: &wg}
	a, aPeer, arc := socketPair(t)
	b, bPeer, brc := socketPair(t)
	fdOf := func(rc interface{ Control(func(uintptr)) error }) int {
		var n int
		_ = rc.Control(func(fd uintptr) { n = int(fd) })
		return n
	}
	afd, bfd := fdOf(arc), fdOf(brc)
	var pa, pb testParkee
	if !p.Park(&pa, afd) || !p.Park(&pb, bfd) {
		t.Fatal("park refused")
	}
	events := func(x *testParkee, want int32) {
		t.Helper()
		testutil.CheckFor(t, 5*time.Second, func() error {
			if n := x.events.Load(); n != want {
				return fmt.Errorf("%d events, want %d", n, want)
			}
			return nil
		})
	}
	write := func(c interface{ Write([]byte) (int, error) }) {
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	write(aPeer)
	events(&pa, 1)
	write(aPeer) // one shot: not armed again yet
	write(bPeer)
	events(&pb, 1)
	if n := pa.events.Load(); n != 1 {
		t.Fatalf("a one-shot socket fired %d times", n)
	}
	if !p.Rearm(afd) {
		t.Fatal("rearm refused")
	}
	events(&pa, 2) // its bytes are still there: level, once re-armed

	// Both drained and armed again; a unparked: its next bytes reach
	// nobody, while b's, written after them, arrive.
	drain := func(c net.Conn) {
		var buf [16]byte
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for {
			if _, err := c.Read(buf[:]); err != nil {
				_ = c.SetReadDeadline(time.Time{})
				return
			}
		}
	}
	drain(a)
	drain(b)
	if !p.Rearm(afd) || !p.Rearm(bfd) {
		t.Fatal("rearm refused")
	}
	p.Unpark(afd)
	write(aPeer)
	write(bPeer)
	events(&pb, 2)
	if n := pa.events.Load(); n != 2 {
		t.Fatalf("an unparked socket fired (%d events)", n)
	}

	p.Stop()
	wg.Wait()
	if pa.stopped.Load() != 0 || pb.stopped.Load() != 1 {
		t.Fatalf("stopped: a %d, b %d; want 0, 1", pa.stopped.Load(), pb.stopped.Load())
	}
	if p.Park(&pa, afd) {
		t.Fatal("a stopped parker took a socket")
	}
}
