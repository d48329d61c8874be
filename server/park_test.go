package server

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// parkingServer parks connections after 30 ms without input.
func parkingServer(t *testing.T, edit func(*Config)) *testServer {
	if !netio.CanPark {
		t.Skip("connections park on Linux only")
	}
	return newTestServer(t, func(c *Config, _ *room.Config) {
		c.ParkAfter = 30 * time.Millisecond
		if edit != nil {
			edit(c)
		}
	})
}

func waitParked(t *testing.T, ts *testServer, n int) {
	t.Helper()
	checkFor(t, 5*time.Second, func() error {
		if p := ts.ParkedConnections(); p != n {
			return fmt.Errorf("%d parked, want %d", p, n)
		}
		return nil
	})
}

// Idle connections hold no goroutine; a parked one still gets deliveries
// and wakes for its client's next frame.
func TestIdleConnectionsParkWithoutGoroutines(t *testing.T) {
	ts := parkingServer(t, nil)
	base := runtime.NumGoroutine()
	const n = 50
	conns := make([]*client.Conn, n)
	for i := range conns {
		conns[i] = ts.connect(t)
		join(t, conns[i], 1, "chat:park", nil)
	}
	waitParked(t, ts, n)
	// The clients' own readers are not running; what is left is the server's
	// parker and the test's bookkeeping, not a goroutine per connection.
	if g := runtime.NumGoroutine(); g > base+10 {
		t.Fatalf("%d goroutines with %d connections parked (%d before)", g, n, base)
	}

	pub := conns[0]
	send(t, pub, client.M{"t": "pub", "id": 2, "r": "chat:park", "d": "hello"})
	expect(t, pub, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	for _, c := range conns[1:] {
		f := expect(t, c, protocol.TypeMsg, protocol.TypePres)
		if v := value(t, f.D); v != "hello" {
			t.Fatalf("got %v", v)
		}
	}
	// Every one wakes for its own frame, and parks again after.
	for i, c := range conns {
		send(t, c, client.M{"t": "pub", "id": 3, "r": "chat:park", "d": i})
		expect(t, c, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	}
	waitParked(t, ts, n)
}

// A parked client that stops answering pings is still closed within the
// ping interval plus the pong timeout: the ping timer stands in for the
// read deadline no goroutine waits on.
func TestParkedSilentClientIsClosedWithinIntervalPlusTimeout(t *testing.T) {
	const interval, timeout = 300 * time.Millisecond, 200 * time.Millisecond
	ts := parkingServer(t, func(c *Config) { c.PingInterval, c.PongTimeout = interval, timeout })
	c := ts.connect(t)
	waitParked(t, ts, 1)
	expectClosedWhenSilent(t, ts, c, interval+timeout)
}

// A parked client that answers pings stays open through many intervals,
// parking between them.
func TestParkedAnsweringClientStaysOpen(t *testing.T) {
	ts := parkingServer(t, func(c *Config) { c.PingInterval, c.PongTimeout = 100*time.Millisecond, 150*time.Millisecond })
	c := ts.connect(t)
	ctx := testCtx(t)
	pings := 0
	for pings < 8 {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("closed after %d pings: %v", pings, err)
		}
		if f.T == protocol.TypePing {
			pings++
		}
	}
	if ts.Connections() != 1 {
		t.Fatalf("%d connections", ts.Connections())
	}
}

// Shutdown says bye to parked connections and returns once they close.
func TestShutdownWakesParkedSessions(t *testing.T) {
	ts := parkingServer(t, nil)
	conns := []*client.Conn{ts.connect(t), ts.connect(t), ts.connect(t)}
	waitParked(t, ts, 3)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	for _, c := range conns {
		expectBye(t, c, protocol.CodeShutdown)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if p := ts.ParkedConnections(); p != 0 {
		t.Fatalf("%d still parked", p)
	}
}

// Parking keeps a connection's inbound rate where it was: a client that
// spent its burst and went idle gets no new burst from being parked.
func TestParkedSessionKeepsItsRateLimit(t *testing.T) {
	ts := parkingServer(t, func(c *Config) { c.FrameRate, c.FrameBurst, c.FloodStrikes = 0.5, 4, 1000 })
	c := ts.connect(t)
	join(t, c, 1, "chat:rl", nil) // the join spends one token
	for id := uint64(2); id <= 4; id++ {
		send(t, c, client.M{"t": "pub", "id": id, "r": "chat:rl", "d": "x"})
		expect(t, c, protocol.TypeOK, protocol.TypeMsg)
	}
	waitParked(t, ts, 1)
	send(t, c, client.M{"t": "pub", "id": 5, "r": "chat:rl", "d": "x"})
	f := expect(t, c, protocol.TypeErr, protocol.TypeMsg)
	if f.Code != protocol.CodeRateLimited || f.ID != 5 {
		t.Fatalf("after parking: %+v, want err rate_limited for id 5", f)
	}
}

// A parked connection's pongs are taken by the parker: answering pings does
// not wake it.
func TestParkedSessionTakesPongsAsleep(t *testing.T) {
	ts := parkingServer(t, func(c *Config) { c.PingInterval, c.PongTimeout = 60*time.Millisecond, 200*time.Millisecond })
	c := ts.connect(t)
	waitParked(t, ts, 1)
	wakes := ts.parkWakes.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	pings := 0
	for { // reading answers the pings: about ten of them
		f, err := c.Next(ctx)
		if err != nil {
			break
		}
		if f.T == protocol.TypePing {
			pings++
		}
	}
	if pings < 3 {
		t.Fatalf("%d pings in 600 ms", pings)
	}
	if w := ts.parkWakes.Load() - wakes; w != 0 || ts.ParkedConnections() != 1 || ts.Connections() != 1 {
		t.Fatalf("woken %d times; parked %d, connections %d", w, ts.ParkedConnections(), ts.Connections())
	}
}

// Once enough sessions parked and parking settled, the server gives free
// memory back once; more parks of the same sessions do not repeat it.
func TestManyParkedSessionsReleaseMemoryOnce(t *testing.T) {
	const quiet = 50 * time.Millisecond
	ts := parkingServer(t, nil)
	ts.release.SetPolicy(3, quiet, time.Minute, math.Inf(1))
	for range 3 {
		ts.connect(t)
	}
	waitParked(t, ts, 3)
	checkFor(t, 5*time.Second, func() error {
		if n := ts.releases.Load(); n != 1 {
			return fmt.Errorf("%d releases", n)
		}
		return nil
	})
	c := ts.connect(t) // one more parks: below releaseMin more, no release
	waitParked(t, ts, 4)
	send(t, c, client.M{"t": "join", "id": 1, "r": "chat:rel"})
	expect(t, c, protocol.TypeJoined)
	waitParked(t, ts, 4)
	time.Sleep(3 * quiet) // a release would come within quiet of the last park
	if n := ts.releases.Load(); n != 1 {
		t.Fatalf("%d releases, want still 1", n)
	}
}
