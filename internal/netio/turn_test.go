//go:build linux

package netio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
	"golang.org/x/sys/unix"
)

// testSource queues byte strings and writes each as one piece, with a
// 4-byte header of its length.
type testSource struct {
	mu      sync.Mutex
	turn    Turn
	queue   [][]byte
	block   bool // the next piece may only be written by the writer
	taken   []byte
	wrote   int // pieces
	dropped int // pieces
	failed  int
	writers int // takes with mayBlock (the writer goroutine's)
}

func (s *testSource) Lock()   { s.mu.Lock() }
func (s *testSource) Unlock() { s.mu.Unlock() }

func (s *testSource) TakeLocked(mayBlock bool) Due {
	if len(s.queue) == 0 {
		return Idle
	}
	if s.block && !mayBlock {
		return Blocking
	}
	if mayBlock {
		s.writers++
	}
	s.taken, s.queue = s.queue[0], s.queue[1:]
	return Ready
}

func (s *testSource) Render(p *Piece) {
	n := len(s.taken)
	p.H = append(p.Hdr[:0], byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	p.B, s.taken = s.taken, nil
	p.Count, p.Size = 1, n
}

func (s *testSource) WroteLocked(*Piece)   { s.wrote++ }
func (s *testSource) DroppedLocked(*Piece) { s.dropped++ }
func (s *testSource) Failed() {
	s.mu.Lock()
	s.failed++
	s.mu.Unlock()
}

func (s *testSource) send(b []byte) {
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.turn.KickLocked()
	s.mu.Unlock()
}

// state returns counters under the lock, and the turn's done channel.
func (s *testSource) state() (wrote, dropped, failed, writers int, done chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wrote, s.dropped, s.failed, s.writers, s.turn.DoneLocked()
}

// socketPair returns the two ends of a Unix stream socket pair, the first
// with a small send buffer (and the second a small receive buffer), so
// that a non-blocking write stops part-way through a piece.
func socketPair(t *testing.T) (a, b net.Conn, rc syscall.RawConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	_ = unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { _ = c.Close() })
	}
	rc, err = conns[0].(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return conns[0], conns[1], rc
}

func newSource(conn net.Conn, rc syscall.RawConn, fl *Flushers, wg *sync.WaitGroup) *testSource {
	return newSourceTimeout(conn, rc, fl, wg, 5*time.Second)
}

// newSourceTimeout is newSource with the turn's write timeout.
func newSourceTimeout(conn net.Conn, rc syscall.RawConn, fl *Flushers, wg *sync.WaitGroup, timeout time.Duration) *testSource {
	s := &testSource{}
	s.turn.Init(s, TurnConfig{Conn: conn, Raw: rc, Flushers: fl, WG: wg, Timeout: timeout})
	return s
}

// readPieces reads n pieces as testSource writes them.
func readPieces(t *testing.T, c net.Conn, n int) [][]byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out [][]byte
	for range n {
		var h [4]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatalf("after %d pieces: %v", len(out), err)
		}
		b := make([]byte, int(h[0])<<24|int(h[1])<<16|int(h[2])<<8|int(h[3]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("piece %d: %v", len(out), err)
		}
		out = append(out, b)
	}
	return out
}

// Pieces larger than the socket's buffers, queued while the peer does not
// read: the flushers' writes stop part-way, the writer goroutine finishes
// each rest before anything else, and the peer gets every piece intact and
// in order; then the turn ends and nothing is left running.
func TestTurnPartialWrites(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	a, b, rc := socketPair(t)
	s := newSource(a, rc, fl, &wg)
	const pieces = 20
	var want [][]byte
	for i := range pieces {
		p := bytes.Repeat([]byte{byte('a' + i)}, 10_000+i*997)
		want = append(want, p)
		s.send(p)
	}
	got := readPieces(t, b, pieces)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("piece %d: %d bytes, want %d of %q", i, len(got[i]), len(want[i]), want[i][0])
		}
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		if wrote, _, _, writers, done := s.state(); wrote != pieces || done != nil || writers == 0 {
			return fmt.Errorf("wrote %d of %d, turn held %v, writer takes %d", wrote, pieces, done != nil, writers)
		}
		return nil
	})
	wg.Wait()
	// Once the writer's turn ended, the flushers write again: its deadline
	// is lifted, and one small piece goes out without a writer.
	_, _, _, before, _ := s.state()
	s.send([]byte("x"))
	if got := readPieces(t, b, 1); string(got[0]) != "x" {
		t.Fatalf("got %q", got[0])
	}
	wg.Wait()
	if _, _, _, after, _ := s.state(); after != before {
		t.Fatalf("a small piece on an empty socket went to the writer")
	}
}

// A connection closed while its writer is blocked in a write: the write
// fails, the source hears of it once (Failed), the piece is dropped, the
// turn ends, and nothing more is written.
func TestTurnCloseDuringWrite(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	a, _, rc := socketPair(t)
	s := newSource(a, rc, fl, &wg)
	s.block = true
	s.send(make([]byte, 1<<20)) // far more than the socket takes: the writer blocks
	testutil.CheckFor(t, 5*time.Second, func() error {
		if _, _, _, writers, _ := s.state(); writers == 0 {
			return errors.New("no writer yet")
		}
		return nil
	})
	_, _, _, _, done := s.state()
	if done == nil {
		t.Fatal("the turn is not held")
	}
	_ = a.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the turn did not end after the close")
	}
	wrote, dropped, failed, _, _ := s.state()
	if wrote != 0 || dropped != 1 || failed != 1 {
		t.Fatalf("wrote %d, dropped %d, failed %d; want 0, 1, 1", wrote, dropped, failed)
	}
	s.send([]byte("after")) // the turn is closed: nothing is taken
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) != 1 || s.turn.WritingLocked() {
		t.Fatalf("a closed turn took more: queue %d, writing %v", len(s.queue), s.turn.WritingLocked())
	}
}

// A connection closed by its owner, whose descriptor number the kernel
// hands to a new socket at once: a write due on the old connection fails
// (the source hears Failed) and never reaches the new socket.
func TestTurnNeverWritesAReusedDescriptor(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	a, b, rc := socketPair(t)
	var oldFD uintptr
	_ = rc.Control(func(fd uintptr) { oldFD = fd })
	s := newSource(a, rc, fl, &wg)
	s.send([]byte("before")) // the socket works, and was written
	if got := readPieces(t, b, 1); string(got[0]) != "before" {
		t.Fatalf("got %q", got[0])
	}
	wg.Wait()
	_ = a.Close()

	// The lowest free number is the one just closed.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	reused := -1
	for i, fd := range fds {
		if uintptr(fd) == oldFD {
			reused = i
		}
	}
	if reused < 0 {
		t.Skipf("descriptor %d was not reused (got %v)", oldFD, fds)
	}

	s.send([]byte("must not arrive"))
	wg.Wait()
	if wrote, _, failed, _, _ := s.state(); failed != 1 || wrote != 1 {
		t.Fatalf("wrote %d, failed %d times; want 1, 1", wrote, failed)
	}
	// The reused descriptor's peer holds nothing.
	var buf [64]byte
	n, _, err := unix.Recvfrom(fds[1-reused], buf[:], unix.MSG_DONTWAIT)
	if n > 0 || !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("the new socket got %q (%v)", buf[:max(n, 0)], err)
	}
}

// A source that says its next piece may block gets a writer goroutine
// even with flushers, and a turn without flushers always writes there.
func TestTurnBlockingGoesToTheWriter(t *testing.T) {
	var wg sync.WaitGroup
	for _, withFlushers := range []bool{true, false} {
		var fl *Flushers
		if withFlushers {
			fl = &Flushers{WG: &wg}
		}
		a, b, rc := socketPair(t)
		s := newSource(a, rc, fl, &wg)
		s.block = true
		s.send([]byte("bye"))
		if got := readPieces(t, b, 1); string(got[0]) != "bye" {
			t.Fatalf("got %q", got[0])
		}
		wg.Wait()
		if _, _, _, writers, _ := s.state(); writers != 1 {
			t.Fatalf("flushers %v: %d writer takes, want 1", withFlushers, writers)
		}
	}
}

// The flushers' budget: with one flusher and a budget of a few turns per
// grab, a burst of many turns is written in full, grab by grab, and the
// flusher ends once the queue is empty.
func TestFlushersBudget(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg, Max: 1, budget: 3}
	const conns = 25
	type pair struct {
		s    *testSource
		peer net.Conn
	}
	var all []pair
	for range conns {
		a, b, rc := socketPair(t)
		all = append(all, pair{newSource(a, rc, fl, &wg), b})
	}
	// With the one flusher counted as running, the burst queues up before
	// it takes its first grab.
	fl.mu.Lock()
	fl.max, fl.running = 1, 1
	fl.mu.Unlock()
	for i, p := range all {
		p.s.send([]byte{byte(i)})
	}
	fl.mu.Lock()
	queued := len(fl.q) - fl.head
	fl.mu.Unlock()
	if queued != conns {
		t.Fatalf("%d turns queued, want %d", queued, conns)
	}
	wg.Add(1) // the one flusher, as add starts it
	go fl.run()
	for i, p := range all {
		if got := readPieces(t, p.peer, 1); len(got[0]) != 1 || got[0][0] != byte(i) {
			t.Fatalf("conn %d got %v", i, got[0])
		}
	}
	wg.Wait()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.running != 0 || len(fl.q) != 0 || fl.grabs != (conns+2)/3 {
		t.Fatalf("running %d, queued %d, grabs %d (want %d)", fl.running, len(fl.q), fl.grabs, (conns+2)/3)
	}
}

// A writer's deadline ends with its turn: long after it would have passed,
// a flusher's non-blocking write on the same socket still goes out.
func TestTurnWriterDeadlineEndsWithItsTurn(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	a, b, rc := socketPair(t)
	const timeout = 20 * time.Millisecond
	s := newSourceTimeout(a, rc, fl, &wg, timeout)
	s.block = true
	s.send([]byte("by the writer"))
	readPieces(t, b, 1)
	wg.Wait()
	ended := time.Now()
	s.mu.Lock()
	s.block = false
	s.mu.Unlock()
	for time.Since(ended) < 2*timeout {
		time.Sleep(timeout) // the writer's deadline, had it stayed, has passed
	}
	s.send([]byte("by a flusher"))
	if got := readPieces(t, b, 1); string(got[0]) != "by a flusher" {
		t.Fatalf("got %q", got[0])
	}
	wg.Wait()
	if _, _, failed, writers, _ := s.state(); failed != 0 || writers != 1 {
		t.Fatalf("failed %d, writer takes %d; want 0, 1", failed, writers)
	}
}

// A goroutine that holds the turn itself (HoldLocked) writes what is due
// in its own call, without the flushers; a turn already held is not taken
// twice; and a piece too large for the socket is finished by the writer
// goroutine, intact and in order.
func TestTurnHeldByCaller(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	a, b, rc := socketPair(t)
	s := newSource(a, rc, fl, &wg)

	s.mu.Lock()
	s.queue = append(s.queue, []byte("one"), []byte("two"))
	if !s.turn.HoldLocked() {
		s.mu.Unlock()
		t.Fatal("a free turn was not taken")
	}
	if s.turn.HoldLocked() {
		s.mu.Unlock()
		t.Fatal("a held turn was taken again")
	}
	s.mu.Unlock()
	s.turn.WriteHeld()
	if wrote, _, _, writers, done := s.state(); wrote != 2 || writers != 0 || done != nil {
		t.Fatalf("after WriteHeld: wrote %d, writer takes %d, turn held %v; want 2, 0, false", wrote, writers, done != nil)
	}
	if fl.grabs != 0 {
		t.Fatalf("the flushers took %d batches", fl.grabs)
	}
	if got := readPieces(t, b, 2); string(got[0]) != "one" || string(got[1]) != "two" {
		t.Fatalf("got %q", got)
	}

	big := bytes.Repeat([]byte("z"), 200_000) // far more than the socket takes at once
	s.mu.Lock()
	s.queue = append(s.queue, big, []byte("after"))
	held := s.turn.HoldLocked()
	s.mu.Unlock()
	if !held {
		t.Fatal("a free turn was not taken")
	}
	s.turn.WriteHeld() // returns with the rest handed to the writer
	got := readPieces(t, b, 2)
	if !bytes.Equal(got[0], big) || string(got[1]) != "after" {
		t.Fatalf("got %d and %q bytes", len(got[0]), got[1])
	}
	wg.Wait()
	if _, _, _, writers, _ := s.state(); writers == 0 {
		t.Fatal("the rest of a partial write did not go to the writer")
	}
}
