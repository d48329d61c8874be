package membership

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// A node alone tries its seeds after 200 ms, then twice as long each time
// up to the steady interval; once joined it tries every steady interval;
// alone again, it starts over from 200 ms.
func TestRejoinBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		start := time.Now()
		var at []time.Duration
		joinedFrom := 8 // the 8th try finds a peer...
		aloneFrom := 10 // ...and from the 10th the node is alone again
		done := make(chan struct{})
		go func() {
			defer close(done)
			runRejoin(stop, 30*time.Second, false, func() bool {
				at = append(at, time.Since(start))
				n := len(at)
				return n >= joinedFrom && n < aloneFrom
			})
		}()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		close(stop)
		<-done

		var gaps []time.Duration
		prev := time.Duration(0)
		for _, a := range at {
			gaps = append(gaps, a-prev)
			prev = a
		}
		want := []time.Duration{
			200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
			3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond, 25600 * time.Millisecond,
			30 * time.Second, 30 * time.Second, // joined: steady
			200 * time.Millisecond, 400 * time.Millisecond, // alone again: backoff anew
		}
		if len(gaps) < len(want) || !slices.Equal(gaps[:len(want)], want) {
			t.Errorf("delays between tries %v, want %v...", gaps, want)
		}
	})
}

// A steady interval shorter than 200 ms is the first delay and the ceiling;
// a node already joined at start waits the steady interval.
func TestRejoinBackoffShortSteady(t *testing.T) {
	b := newRejoinBackoff(100 * time.Millisecond)
	for i := range 3 {
		if d := b.delay(false); d != 100*time.Millisecond {
			t.Errorf("try %d: delay %v, want 100ms", i, d)
		}
	}
	b = newRejoinBackoff(30 * time.Second)
	if d := b.delay(true); d != 30*time.Second {
		t.Errorf("joined: delay %v, want 30s", d)
	}
	if d := b.delay(false); d != rejoinFirst {
		t.Errorf("alone after joined: delay %v, want %v", d, rejoinFirst)
	}
}
