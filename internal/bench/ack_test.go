package bench

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// A publisher's ok is timed from the pub's write to the read of its ok:
// behind a proxy that holds every byte from the server for 30 ms, no ok
// comes sooner, and every measured ok is timed.
func TestAckLatency(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	const delay = 30 * time.Millisecond
	c := quick(delayProxy(t, url, delay), "fanout")
	c.Rooms, c.Subs, c.Rate = 2, 1, 100
	res := run(t, c)
	checkClean(t, res)
	a := res.AckLatency
	if a.P50 < ms(delay) || a.Max < a.P99 || a.P99 < a.P50 {
		t.Errorf("publish→ok %+v behind a proxy delaying the server's bytes by %s", a, delay)
	}
	if a.P50 > 10*ms(delay) {
		t.Errorf("publish→ok p50 %.2f ms: not the round trip through a %s proxy", a.P50, delay)
	}
}

// A slot reused by a later pub no longer times the earlier one.
func TestSentRing(t *testing.T) {
	p := &publisher{sentAt: sentRing(10)}
	if n := len(p.sentAt); n != 64 || n&(n-1) != 0 {
		t.Fatalf("ring of %d slots for 10/s", n)
	}
	if n := len(sentRing(1000)); n != 4096 {
		t.Errorf("ring of %d slots for 1,000/s; want 4,096 (4 s)", n)
	}
	if n := len(sentRing(1e9)); n != 1<<16 {
		t.Errorf("ring of %d slots for 1e9/s; want the cap 65,536", n)
	}
	p.markSent(5, 1000)
	if ns, ok := p.sentTime(5); !ok || ns != 1000 {
		t.Errorf("sentTime(5) = %d, %v; want 1000, true", ns, ok)
	}
	p.markSent(5+64, 2000)
	if _, ok := p.sentTime(5); ok {
		t.Error("pub 5 still timed after its slot went to pub 69")
	}
	if ns, ok := p.sentTime(69); !ok || ns != 2000 {
		t.Errorf("sentTime(69) = %d, %v; want 2000, true", ns, ok)
	}
	var none publisher
	if _, ok := none.sentTime(1); ok {
		t.Error("a publisher without a ring timed a pub")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// delayProxy forwards loopback TCP connections to the node at url, holding
// every byte the node sends for delay, and returns the proxy's URL.
func delayProxy(t *testing.T, url string, delay time.Duration) string {
	t.Helper()
	target := strings.TrimPrefix(url, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false // closed
		}
		conns = append(conns, c)
		return true
	}
	conns = []net.Conn{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			if !track(in) || !track(out) {
				in.Close()
				out.Close()
				return
			}
			wg.Add(3)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(out, in)
				out.Close()
			}()
			type chunk struct {
				due time.Time
				b   []byte
			}
			q := make(chan chunk, 4096)
			go func() {
				defer wg.Done()
				defer close(q)
				for {
					b := make([]byte, 32<<10)
					n, err := out.Read(b)
					if n > 0 {
						q <- chunk{time.Now().Add(delay), b[:n]}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				defer in.Close()
				for c := range q {
					time.Sleep(time.Until(c.due))
					if _, err := in.Write(c.b); err != nil && !errors.Is(err, net.ErrClosed) {
						out.Close()
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}
