//go:build linux

package netio

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// A writer blocked on a peer that stopped reading fails at the turn's
// Timeout; once the source lingers, the write in flight and the pieces
// after it wait for the linger instead, and reach a peer that reads again
// after several Timeouts.
func TestTurnLingerOutlastsTheWriteTimeout(t *testing.T) {
	var wg sync.WaitGroup
	fl := &Flushers{WG: &wg}
	a, b, rc := socketPair(t)
	const timeout = 300 * time.Millisecond
	s := newSourceTimeout(a, rc, fl, &wg, timeout)
	big := bytes.Repeat([]byte("x"), 256<<10) // far beyond both socket buffers
	s.send(big)
	time.Sleep(timeout / 6) // the flusher's write stopped part-way: a writer waits
	s.mu.Lock()
	s.turn.LingerLocked(time.Minute)
	s.queue = append(s.queue, []byte("bye"))
	s.mu.Unlock()
	start := time.Now()
	for time.Since(start) < 4*timeout {
		time.Sleep(timeout) // the Timeout, had it held, has passed
	}
	got := readPieces(t, b, 2)
	if !bytes.Equal(got[0], big) || string(got[1]) != "bye" {
		t.Fatalf("got %d and %q", len(got[0]), got[1])
	}
	wg.Wait()
	if _, _, failed, _, _ := s.state(); failed != 0 {
		t.Fatalf("failed %d, want 0", failed)
	}
}
