package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
)

// tlsServer is a parking server (parkingServer) that also serves TLS, with
// a self-signed certificate made for the test, through Server.Serve (the
// http.Server roomd runs, with its timeouts).
type tlsServer struct {
	*testServer
	URL  string        // https://127.0.0.1:port
	Addr string        // 127.0.0.1:port
	TLS  *tls.Config   // a client's: trusts the certificate
	done chan struct{} // closed when Serve returned
}

func newTLSServer(t *testing.T, edit func(*Config)) *tlsServer {
	t.Helper()
	return newTLSServerOn(t, edit, net.ListenConfig{})
}

// newTLSServerOn is newTLSServer listening with lc.
func newTLSServerOn(t *testing.T, edit func(*Config), lc net.ListenConfig) *tlsServer {
	t.Helper()
	ts := parkingServer(t, edit)
	kp, pool := testutil.Cert(t)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{testServer: ts, Addr: ln.Addr().String(), TLS: &tls.Config{RootCAs: pool}, done: make(chan struct{})}
	s.URL = "https://" + s.Addr
	go func() {
		defer close(s.done)
		_ = ts.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}))
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ts.Shutdown(ctx) // again in newTestServer's cleanup: a no-op there
		<-s.done
	})
	return s
}

// dial connects over TLS without hello.
func (s *tlsServer) dial(t testing.TB) *client.Conn {
	t.Helper()
	c, _, err := client.Dial(testCtx(t), s.URL, &client.DialOptions{TLS: s.TLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connect dials over TLS and says hello.
func (s *tlsServer) connect(t testing.TB) *client.Conn {
	t.Helper()
	c := s.dial(t)
	if err := c.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitConnections(t *testing.T, ts *testServer, n int) {
	t.Helper()
	checkFor(t, 5*time.Second, func() error {
		if c := ts.Connections(); c != n {
			return fmt.Errorf("%d connections, want %d", c, n)
		}
		return nil
	})
}

// Idle TLS connections park like plain ones, holding no goroutine; a
// parked one still gets deliveries, and wakes for its client's frames.
func TestTLSConnectionsParkAndStillReceive(t *testing.T) {
	ts := newTLSServer(t, nil)
	base := runtime.NumGoroutine()
	const n = 20
	conns := make([]*client.Conn, n)
	for i := range conns {
		conns[i] = ts.connect(t)
		join(t, conns[i], 1, "chat:tls", nil)
	}
	waitParked(t, ts.testServer, n)
	// The writer goroutines lent to TLS turns (netio.Writers) end within a
	// second of the last write.
	checkFor(t, 5*time.Second, func() error {
		if g := runtime.NumGoroutine(); g > base+10 {
			return fmt.Errorf("%d goroutines with %d TLS connections parked (%d before)", g, n, base)
		}
		return nil
	})
	pub := conns[0]
	send(t, pub, client.M{"t": "pub", "id": 2, "r": "chat:tls", "d": "over tls"})
	expect(t, pub, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	for _, c := range conns[1:] {
		f := expect(t, c, protocol.TypeMsg, protocol.TypePres)
		if v := value(t, f.D); v != "over tls" {
			t.Fatalf("got %v", v)
		}
	}
	waitParked(t, ts.testServer, n)
}

// A parked TLS connection answers its client's WebSocket ping with a pong,
// and parks again.
func TestParkedTLSConnectionAnswersPing(t *testing.T) {
	ts := newTLSServer(t, nil)
	c := ts.connect(t)
	waitParked(t, ts.testServer, 1)
	wakes := ts.parkWakes.Load()
	pongs := readPongs(c)
	for i := range 3 {
		data := fmt.Sprintf("ping %d", i)
		if err := c.WS().WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-pongs:
			if got != data {
				t.Fatalf("pong %q, want %q", got, data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no pong to %q", data)
		}
		waitParked(t, ts.testServer, 1)
	}
	if ts.parkWakes.Load() == wakes {
		t.Fatal("the pings were answered without waking the session")
	}
}

// Pings whose records reach a parked TLS connection in one segment are
// all answered: the session reads what crypto/tls kept of the segment
// before it parks again (the socket, read empty, would not wake it).
func TestParkedTLSConnectionAnswersPingsSentTogether(t *testing.T) {
	ts := newTLSServer(t, nil)
	var cc *testutil.CorkConn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			cc = &testutil.CorkConn{Conn: nc}
			return cc, nil
		}
		return nil, err
	}
	c, _, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{TLS: ts.TLS, NetDialContext: dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	pongs := readPongs(c)
	for round := range 3 {
		waitParked(t, ts.testServer, 1)
		_ = cc.SetCorked(true)
		for i := range 3 {
			if err := c.WS().WriteControl(websocket.PingMessage, fmt.Appendf(nil, "%d.%d", round, i), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if err := cc.SetCorked(false); err != nil {
			t.Fatal(err)
		}
		// A pong owed may be replaced by the next one (RFC 6455 §5.5.3):
		// the last ping's must come.
		last := fmt.Sprintf("%d.2", round)
		for got := ""; got != last; {
			select {
			case got = <-pongs:
				if got < fmt.Sprintf("%d.0", round) || got > last {
					t.Fatalf("pong %q in round %d", got, round)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("round %d: no pong to the last ping (last pong %q)", round, got)
			}
		}
	}
}

// readPongs reads c until it closes (at the test's end), and returns the
// data of the pongs it gets.
func readPongs(c *client.Conn) <-chan string {
	pongs := make(chan string, 8)
	c.WS().SetPongHandler(func(data string) error {
		pongs <- data
		return nil
	})
	go func() {
		for {
			if _, err := c.Next(context.Background()); err != nil {
				return
			}
		}
	}()
	return pongs
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A parked TLS client that stops answering the server's pings is closed
// within the ping interval plus the pong timeout; one that answers stays.
func TestParkedTLSConnectionPingsAndLiveness(t *testing.T) {
	const interval, timeout = 150 * time.Millisecond, 250 * time.Millisecond
	ts := newTLSServer(t, func(c *Config) { c.PingInterval, c.PongTimeout = interval, timeout })
	answering, silent := ts.connect(t), ts.connect(t)
	waitParked(t, ts.testServer, 2)
	go func() { // answers pings as it reads
		for {
			if _, err := answering.Next(context.Background()); err != nil {
				return
			}
		}
	}()
	silent.WS().SetPingHandler(func(string) error { return nil })
	start := time.Now()
	expectBye(t, silent, protocol.CodeNoPong)
	if el := time.Since(start); el > interval+timeout+time.Second {
		t.Fatalf("silent client closed after %v", el)
	}
	time.Sleep(4 * interval) // several more pings for the answering one
	waitConnections(t, ts.testServer, 1)
	waitParked(t, ts.testServer, 1)
}

// A parked TLS connection closes cleanly: the client's close frame gets
// the close reply, and the session is gone.
func TestParkedTLSConnectionClosesCleanly(t *testing.T) {
	ts := newTLSServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:tlsclose", nil)
	waitParked(t, ts.testServer, 1)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.WS().WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Next(testCtx(t))
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after close: %v, want the close reply %d", err, websocket.CloseNormalClosure)
	}
	waitConnections(t, ts.testServer, 0)
	waitParked(t, ts.testServer, 0)
}

// A parked TLS client that vanishes (its socket closed, no close frame) is
// cleaned up.
func TestParkedTLSClientThatVanishesIsCleanedUp(t *testing.T) {
	ts := newTLSServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:tlsgone", nil)
	waitParked(t, ts.testServer, 1)
	_ = c.Close()
	waitConnections(t, ts.testServer, 0)
	waitParked(t, ts.testServer, 0)
}

// Many parked TLS connections woken at once, each publishing while the
// others receive, all get every message and park again.
func TestParkedTLSConnectionsWokenConcurrently(t *testing.T) {
	ts := newTLSServer(t, nil)
	const n = 12
	conns := make([]*client.Conn, n)
	for i := range conns {
		conns[i] = ts.connect(t)
		join(t, conns[i], 1, "chat:tlsmany", nil)
	}
	waitParked(t, ts.testServer, n)
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Send(client.M{"t": "pub", "id": 10 + round, "r": "chat:tlsmany", "d": i}); err != nil {
					errs <- err
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				seen, ok := map[any]bool{}, false
				for len(seen) < n || !ok {
					f, err := c.Next(ctx)
					if err != nil {
						errs <- fmt.Errorf("conn %d: %d of %d messages, ok %v: %w", i, len(seen), n, ok, err)
						return
					}
					switch f.T {
					case protocol.TypeMsg:
						v, err := client.Value(f.D)
						if err != nil {
							errs <- err
							return
						}
						seen[fmt.Sprint(v)] = true
					case protocol.TypeOK:
						ok = true
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		waitParked(t, ts.testServer, n)
	}
}

// A TLS subscriber that stops reading is cut with slow_consumer, and never
// holds up the others' deliveries: a flusher writes through TLS only when
// the socket has room (the write would otherwise block it), and leaves the
// rest to the connection's writer goroutine.
func TestSlowTLSConsumerIsCutWhileOthersReceive(t *testing.T) {
	const msgs = 1000
	ts := newTLSServerOn(t, func(c *Config) {
		c.QueueMaxBytes = 32 << 10
		c.Flushers = 1               // one flusher: blocked, it would hold up everyone
		c.WriteTimeout = time.Minute // and for long
		c.FrameRate, c.FrameBurst, c.ByteRate = 100000, 100000, 1<<30
	}, net.ListenConfig{Control: smallBuffers(soSndBuf)})
	dialer := &net.Dialer{Control: smallBuffers(soRcvBuf)}
	slow, _, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{TLS: ts.TLS, NetDialContext: dialer.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	join(t, slow, 1, "chat:tlsslow", nil)
	reader := ts.connect(t)
	join(t, reader, 1, "chat:tlsslow", nil)
	payload := strings.Repeat("x", 100) // pieces a flusher may write through TLS
	const batch = 50
	for i := 0; i < msgs; i += batch {
		for j := range batch {
			send(t, reader, client.M{"t": "pub", "id": 10 + i + j, "r": "chat:tlsslow", "d": payload})
		}
		if seqs, _ := collect(t, reader, batch); len(seqs) != batch {
			t.Fatalf("the reader got %d of messages %d to %d", len(seqs), i, i+batch)
		}
	}
	expectBye(t, slow, protocol.CodeSlowConsumer)
}

// The TLS handshake has a deadline (ReadHeaderTimeout, through net/http):
// a client that connects and says nothing is cut.
func TestTLSHandshakeHasADeadline(t *testing.T) {
	const limit = 300 * time.Millisecond
	ts := newTLSServer(t, func(c *Config) { c.ReadHeaderTimeout = limit })
	nc, err := net.Dial("tcp", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = nc.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		t.Fatalf("a silent TLS client: %v after %v, want the connection closed", err, time.Since(start))
	}
	if el := time.Since(start); el > limit+time.Second {
		t.Fatalf("cut after %v, want about %v", el, limit)
	}
	// Counted, not logged line by line (a client fails handshakes as fast
	// as it connects).
	checkFor(t, 5*time.Second, func() error {
		if n := ts.TLSHandshakeFailures(); n != 1 {
			return fmt.Errorf("%d TLS handshake failures counted, want 1", n)
		}
		return nil
	})
}
