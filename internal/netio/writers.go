package netio

import (
	"sync"
	"time"
)

// Writers lend writer goroutines to turns that have no non-blocking writes
// (TLS connections: every write goes through a writer): a goroutine that
// finished one turn's writing waits up to writerLinger for another turn
// instead of ending. A fan-out over TLS then reuses a few goroutines, whose
// stacks have grown to what a TLS write needs, instead of starting (and
// growing the stack of) one per connection per message. Idle, none is
// left.
type Writers struct {
	// WG counts the goroutines. Set before use.
	WG *sync.WaitGroup

	once sync.Once
	next chan *Turn    // an idle goroutine waits on it
	done chan struct{} // closed by Stop
	stop sync.Once
}

// writerLinger is how long a lent goroutine waits for the next turn: longer
// than the gap between two fan-outs at tens of messages per second.
const writerLinger = time.Second

func (w *Writers) init() {
	w.once.Do(func() {
		w.next = make(chan *Turn)
		w.done = make(chan struct{})
	})
}

// start writes t's turn on an idle goroutine, or on a new one.
func (w *Writers) start(t *Turn) {
	w.init()
	select {
	case w.next <- t:
		return
	default:
	}
	w.WG.Add(1)
	go w.run(t)
}

func (w *Writers) run(t *Turn) {
	defer w.WG.Done()
	timer := time.NewTimer(writerLinger)
	defer timer.Stop()
	armed := time.Now()
	for {
		t.run(true)
		// The timer is moved when a quarter of the linger has passed, not
		// after every turn (a timer operation): the goroutine ends after
		// between 3/4 and all of the linger without a turn.
		if now := time.Now(); now.Sub(armed) >= writerLinger/4 {
			timer.Reset(writerLinger)
			armed = now
		}
		select {
		case t = <-w.next:
		case <-timer.C:
			return
		case <-w.done:
			return
		}
	}
}

// Stop ends the idle goroutines, now and from then on: a turn started
// after gets a goroutine that ends with it.
func (w *Writers) Stop() {
	w.init()
	w.stop.Do(func() { close(w.done) })
}
