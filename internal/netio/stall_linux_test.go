//go:build linux

package netio

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
	"golang.org/x/sys/unix"
)

// stallSource is a testSource that, told its client stalled, drops what it
// queued and ends with last words ("bye") under a linger.
type stallSource struct {
	testSource
	stalls int
}

func (s *stallSource) StalledLocked() bool {
	s.stalls++
	s.queue = [][]byte{[]byte("bye")}
	s.turn.LingerLocked(time.Minute)
	return true
}

// A write that the socket takes nothing more of for the turn's Timeout, on
// a Staller, does not fail: the rest of that piece and then the source's
// last words reach a peer that reads again much later, intact and in
// order, and what was queued behind the piece is not written.
func TestTurnStalledClientGetsTheRestAndLastWords(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	cli, srv := tcpPair(t)
	const timeout = 200 * time.Millisecond
	s := &stallSource{}
	s.turn.Init(s, TurnConfig{Conn: srv, Raw: RawConn(srv), Flushers: fl, WG: &wg, Timeout: timeout})
	big := bytes.Repeat([]byte("x"), 32<<20) // far beyond both sockets' buffers
	s.send(big)
	s.send([]byte("dropped at the stall"))
	testutil.CheckFor(t, 10*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stalls != 1 {
			return fmt.Errorf("stalls %d, failed %d", s.stalls, s.failed)
		}
		return nil
	})
	for start := time.Now(); time.Since(start) < 3*timeout; {
		time.Sleep(timeout) // a Timeout, had it held, has passed
	}
	got := readPieces(t, cli, 2)
	if !bytes.Equal(got[0], big) || string(got[1]) != "bye" {
		t.Fatalf("got %d bytes and %q", len(got[0]), got[1])
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != 0 || s.stalls != 1 {
		t.Fatalf("failed %d, stalls %d; want 0, 1", s.failed, s.stalls)
	}
}

// Without the Staller, the same stall fails the turn, as before.
func TestTurnStalledWithoutStallerFails(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	cli, srv := tcpPair(t)
	_ = cli.SetReadBuffer(4096)
	s := &testSource{}
	s.turn.Init(s, TurnConfig{Conn: srv, Raw: RawConn(srv), Flushers: fl, WG: &wg, Timeout: 200 * time.Millisecond})
	s.send(bytes.Repeat([]byte("x"), 16<<20))
	testutil.CheckFor(t, 10*time.Second, func() error {
		if _, _, failed, _, _ := s.state(); failed != 1 {
			return fmt.Errorf("failed %d", failed)
		}
		return nil
	})
	wg.Wait()
}

// Unsent bounds what the socket takes while its peer does not read: the
// option reads back, and non-blocking writes stop far sooner than the
// kernel's own buffer (megabytes on loopback) would.
func TestConnUnsentBound(t *testing.T) {
	taken := func(unsent int) (int, int) {
		cli, srv := tcpPair(t)
		_ = cli.SetReadBuffer(4096)
		var c Conn
		var wg sync.WaitGroup
		c.Open(srv, &testSource{}, false, TurnConfig{Flushers: &Flushers{WG: &wg}, WG: &wg, Timeout: time.Second, Unsent: unsent})
		var opt int
		_ = c.Raw.Control(func(fd uintptr) {
			opt, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
		})
		chunk := make([]byte, 4096)
		total := 0
		for range 4096 { // 16 MiB at most
			var n int
			_ = c.Raw.Write(func(fd uintptr) bool {
				n, _ = writev(fd, nil, chunk)
				return true
			})
			if n == 0 {
				break
			}
			total += n
		}
		return opt, total
	}
	opt, bounded := taken(64 << 10)
	_, kernel := taken(0)
	if opt != 64<<10 || bounded > 512<<10 || kernel < 2*bounded {
		t.Fatalf("option %d; taken %d bytes with the bound, %d without", opt, bounded, kernel)
	}
	t.Logf("taken %d bytes with a 64 KiB bound, %d without", bounded, kernel)
}

// connSource is a testSource on a Conn (Open), which ends with last words
// ("bye") under a linger when its client stalls.
type connSource struct {
	testSource
	c      Conn
	stalls int
}

func (s *connSource) StalledLocked() bool {
	s.stalls++
	s.queue = [][]byte{[]byte("bye")}
	s.c.LingerLocked(time.Minute)
	return true
}

func (s *connSource) push(b []byte) {
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.c.KickLocked()
	s.mu.Unlock()
}

// Last words pass the unsent bound: once the source lingers, the rest of
// the piece in flight and the bye go into the socket's send buffer at once,
// and the turn ends while the peer still reads nothing; a peer that reads
// later finds them whole.
func TestLastWordsPassTheUnsentBound(t *testing.T) {
	var wg sync.WaitGroup
	cli, srv := tcpPair(t)
	s := &connSource{}
	s.c.Open(srv, s, false, TurnConfig{Flushers: &Flushers{WG: &wg}, WG: &wg, Timeout: 200 * time.Millisecond, Unsent: 64 << 10})
	big := bytes.Repeat([]byte("x"), 1<<20) // beyond the bound and the peer's window, within the send buffer
	s.push(big)
	testutil.CheckFor(t, 5*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stalls != 1 || s.c.WritingLocked() {
			return fmt.Errorf("stalls %d, still writing %v, wrote %d pieces", s.stalls, s.c.WritingLocked(), s.wrote)
		}
		return nil
	})
	got := readPieces(t, cli, 2)
	if !bytes.Equal(got[0], big) || string(got[1]) != "bye" {
		t.Fatalf("got %d bytes and %q", len(got[0]), got[1])
	}
	wg.Wait()
	if s.failed != 0 {
		t.Fatalf("failed %d", s.failed)
	}
}
