package server

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// smallBuffers shrinks a socket's kernel buffers, so that a peer that stops
// reading fills them after a few KiB instead of a few MiB.
func smallBuffers(opt int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setBufSize(fd, opt, 8<<10) })
		if err != nil {
			return err
		}
		return serr
	}
}

// slowListener serves ts on a second loopback listener whose accepted
// sockets inherit a small send buffer (Linux copies it from the listening
// socket), and returns its URL and a dialer whose sockets have a small
// receive buffer: a client that stops reading there is felt at once.
func slowListener(t *testing.T, ts *testServer) (string, *net.Dialer) {
	t.Helper()
	lc := net.ListenConfig{Control: smallBuffers(soSndBuf)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slowSrv := httptest.NewUnstartedServer(ts.Handler())
	slowSrv.Listener.Close()
	slowSrv.Listener = ln
	slowSrv.Start()
	t.Cleanup(slowSrv.Close)
	return slowSrv.URL, &net.Dialer{Control: smallBuffers(soRcvBuf)}
}

// slowMember is a member of roomName on ts's slow listener (slowListener),
// closed when the test ends.
func slowMember(t *testing.T, ts *testServer, roomName string) *client.Conn {
	t.Helper()
	slowURL, dialer := slowListener(t, ts)
	slow, _, err := client.Dial(testCtx(t), slowURL, &client.DialOptions{NetDialContext: dialer.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	if err := slow.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	join(t, slow, 1, roomName, nil)
	return slow
}

func TestSlowConsumerIsCutWhileOthersReceiveEverything(t *testing.T) {
	const (
		readers   = 100
		msgs      = 300
		queueMax  = 128 << 10
		payloadSz = 1 << 10
	)
	ts := newTestServer(t, func(c *Config, r *room.Config) {
		c.QueueMaxBytes = queueMax
		c.Flushers = 4 // writes in parallel, whatever the machine
		c.FrameRate = 100000
		c.FrameBurst = 100000
		c.ByteRate = 1 << 30
		r.Default.HistorySize = 10
	})
	slow := slowMember(t, ts, "chat:bp")

	var members []*client.Conn
	for i := 0; i < readers; i++ {
		c := ts.connect(t)
		join(t, c, 1, "chat:bp", nil)
		members = append(members, c)
	}
	pub := ts.connect(t)
	join(t, pub, 1, "chat:bp", nil)
	var drained sync.WaitGroup
	drained.Add(1)
	go func() { // the publisher is a member too: it must read its echoes
		defer drained.Done()
		collect(t, pub, msgs)
	}()
	defer drained.Wait()

	// Sample the server's queued bytes throughout.
	var maxQueued atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if q := ts.QueuedBytes(); q > maxQueued.Load() {
				maxQueued.Store(q)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	got := make([][]uint64, readers)
	for i, c := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = collect(t, c, msgs)
		}()
	}
	payload := strings.Repeat("p", payloadSz)
	// About 100 messages/s: 10,000 deliveries/s, which the readers keep
	// up with even under the race detector on two cores, while the slow
	// one falls behind by everything.
	go func() {
		for i := 0; i < msgs; i += 5 {
			if err := pub.Send(repeat(client.M{"t": "pub", "r": "chat:bp", "d": payload}, 5)...); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	sampler.Wait()

	for i, seqs := range got {
		if len(seqs) != msgs {
			t.Fatalf("reader %d got %d of %d", i, len(seqs), msgs)
		}
		for j, s := range seqs {
			if s != uint64(j+1) {
				t.Fatalf("reader %d: seq %d at %d", i, s, j)
			}
		}
	}
	if ts.SlowConsumerCuts() != 1 {
		t.Fatalf("slow-consumer cuts = %d, want 1", ts.SlowConsumerCuts())
	}
	// Bounded: no connection ever holds more than its queue bound (plus one
	// frame), so all of them together stay under connections × bound.
	bound := int64((readers + 2) * (queueMax + payloadSz + 64))
	if m := maxQueued.Load(); m > bound {
		t.Fatalf("queued bytes peaked at %d, bound %d", m, bound)
	}
	// The slow client, reading at last, finds what was written before the
	// cut, then bye slow_consumer and close 4002; then nothing is queued.
	expectBye(t, slow, protocol.CodeSlowConsumer)
	checkFor(t, 5*time.Second, func() error {
		if q := ts.QueuedBytes(); q != 0 {
			return fmt.Errorf("%d bytes still queued", q)
		}
		return nil
	})
}

// lingerServer is a test server with the queue bound and write timeout
// given, a minute of bye linger, the inbound limits raised and a history of
// 10.
func lingerServer(t *testing.T, queueMax int, writeTimeout time.Duration) *testServer {
	return newTestServer(t, func(c *Config, r *room.Config) {
		c.QueueMaxBytes = queueMax
		c.WriteTimeout = writeTimeout
		c.ByeLinger = time.Minute
		c.FrameRate = 100000
		c.FrameBurst = 100000
		c.ByteRate = 1 << 30
		r.Default.HistorySize = 10
	})
}

// A client that stops reading for longer than one write may take is cut
// with slow_consumer, and still finds its bye when it reads again within
// ByeLinger: the writes due after a bye wait that long, not WriteTimeout.
func TestSlowConsumerFindsItsByeAfterTheWriteTimeout(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	ts := lingerServer(t, 32<<10, writeTimeout)
	slow := slowMember(t, ts, "chat:linger")
	pub := ts.connect(t)
	join(t, pub, 1, "chat:linger", nil)
	drained := make(chan struct{})
	go func() { // the publisher is a member too: it reads its echoes
		defer close(drained)
		for {
			if _, err := pub.Next(context.Background()); err != nil {
				return
			}
		}
	}()
	defer func() { pub.Close(); <-drained }()
	payload := strings.Repeat("p", 1<<10)
	checkFor(t, 10*time.Second, func() error {
		if ts.SlowConsumerCuts() == 1 {
			return nil
		}
		if err := pub.Send(repeat(client.M{"t": "pub", "r": "chat:linger", "d": payload}, 20)...); err != nil {
			return err
		}
		return fmt.Errorf("not cut yet")
	})
	// Several write timeouts pass with the client still not reading: the
	// write in flight when it was cut, then its bye, wait for it.
	time.Sleep(5 * writeTimeout)
	expectBye(t, slow, protocol.CodeSlowConsumer)
}

// A client whose socket takes nothing more for WriteTimeout is cut with
// slow_consumer, counted, however far its queue is from its bound; reading
// again, it finds what its socket held and then its bye.
func TestStalledClientIsCutAsASlowConsumer(t *testing.T) {
	ts := lingerServer(t, 64<<20, 200*time.Millisecond) // a queue bound never reached here
	slow := slowMember(t, ts, "chat:stall")
	pub := ts.connect(t)
	join(t, pub, 1, "chat:stall", nil)
	const msgs = 200 // 200 KiB: far beyond the slow member's socket buffers
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		collect(t, pub, msgs)
	}()
	payload := strings.Repeat("p", 1<<10)
	for i := 0; i < msgs; i += 20 {
		if err := pub.Send(repeat(client.M{"t": "pub", "r": "chat:stall", "d": payload}, 20)...); err != nil {
			t.Fatal(err)
		}
	}
	<-collected
	checkFor(t, 10*time.Second, func() error {
		if n := ts.SlowConsumerCuts(); n != 1 {
			return fmt.Errorf("%d slow-consumer cuts, queued %d bytes", n, ts.QueuedBytes())
		}
		return nil
	})
	expectBye(t, slow, protocol.CodeSlowConsumer)
}

// A queue grows through the pooled array sizes (8, 64, 512 frames) and then
// as a slice, in order; once warm, a queue filled to 512 frames and written
// allocates nothing.
func TestQueueGrowsThroughPooledSizes(t *testing.T) {
	s := &session{srv: &Server{cfg: Config{QueueMaxBytes: 1 << 20, Metrics: noopMetrics{}}}}
	s.sock.CloseLocked() // no writer: inspect the queue as it builds up
	frames := make([][]byte, 1000)
	for i := range frames {
		frames[i] = []byte(strconv.Itoa(i))
	}
	caps := map[int]int{}
	for i, f := range frames {
		s.enqueue(f, durable, "", "")
		caps[i+1] = cap(s.queue)
	}
	if caps[8] != 8 || caps[9] != 64 || caps[64] != 64 || caps[65] != 512 || caps[512] != 512 || caps[513] <= 512 {
		t.Fatalf("capacities at 8, 9, 64, 65, 512, 513 frames: %d %d %d %d %d %d", caps[8], caps[9], caps[64], caps[65], caps[512], caps[513])
	}
	for i, it := range s.queue {
		if string(it.b) != string(frames[i]) {
			t.Fatalf("frame %d is %q", i, it.b)
		}
	}
	s.dropQueueLocked()
	if raceEnabled {
		return // the race detector drops pooled items on purpose
	}
	fill := func() {
		for _, f := range frames[:512] {
			s.enqueue(f, durable, "", "")
		}
		s.dropQueueLocked()
	}
	fill()
	if n := testing.AllocsPerRun(50, fill); n >= 1 {
		t.Fatalf("%.1f allocations per 512 frames queued", n)
	}
}

func TestEphemeralIsCoalescedAndDroppedBeforeDurable(t *testing.T) {
	s := &session{srv: &Server{cfg: Config{QueueMaxBytes: 100, Metrics: noopMetrics{}}}}
	s.sock.CloseLocked() // no writer: inspect the queue as it builds up
	eph := func(from, v string) { s.enqueue([]byte(v), dropOK, "r", from) }
	eph("a", strings.Repeat("1", 20))
	eph("a", strings.Repeat("2", 20)) // replaces the first
	eph("b", strings.Repeat("3", 20))
	if len(s.queue) != 2 || s.queue[0].b[0] != '2' || s.qbytes != 40 {
		t.Fatalf("coalescing: queue %d items, %d bytes", len(s.queue), s.qbytes)
	}
	s.enqueue(make([]byte, 50), durable, "", "")
	eph("c", strings.Repeat("4", 20)) // does not fit: dropped
	if s.qbytes != 90 || s.ephDropped != 1 {
		t.Fatalf("eph drop: %d bytes, %d dropped", s.qbytes, s.ephDropped)
	}
	s.enqueue(make([]byte, 40), durable, "", "") // evicts the ephemerals
	if s.qbytes != 90 || len(s.queue) != 2 || s.closing {
		t.Fatalf("eviction: %d bytes, %d items, closing %v", s.qbytes, len(s.queue), s.closing)
	}
}

// A reader that pauses while large frames pile up gets every one intact and
// in order once it reads again. Its socket buffers are a few KiB, so the
// flushers' non-blocking writes stop inside frames and the writer goroutine
// finishes them (a stream cut mid-frame and resumed wrongly would not parse).
func TestPausedReaderGetsFramesWrittenInPartsIntact(t *testing.T) {
	const msgs = 40
	ts := newTestServer(t, func(c *Config, r *room.Config) {
		c.QueueMaxBytes = 1 << 20
		c.FrameRate, c.FrameBurst, c.ByteRate = 100000, 100000, 1<<30
		r.Default.HistorySize = msgs
	})
	slowURL, dialer := slowListener(t, ts)
	paused, _, err := client.Dial(testCtx(t), slowURL, &client.DialOptions{NetDialContext: dialer.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Close()
	if err := paused.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	join(t, paused, 1, "chat:parts", nil)
	pub := ts.connect(t)
	join(t, pub, 1, "chat:parts", nil)

	sizes := make([]int, msgs)
	for i := range sizes {
		sizes[i] = 3000 + (i*7919)%9000 // 3-12 KB, odd sizes
		send(t, pub, client.M{"t": "pub", "r": "chat:parts", "d": strings.Repeat(string(rune('a'+i%26)), sizes[i])})
	}
	seqs, _ := collect(t, pub, msgs) // the publisher's own copies
	if len(seqs) != msgs {
		t.Fatalf("publisher got %d of %d", len(seqs), msgs)
	}
	checkFor(t, 5*time.Second, func() error { // everything is written or queued behind a full socket
		if q := ts.QueuedBytes(); q == 0 {
			return fmt.Errorf("nothing queued: the socket took %d KB?", msgs*7)
		}
		return nil
	})
	seqs, data := collect(t, paused, msgs)
	for i := range msgs {
		if seqs[i] != uint64(i+1) || len(data[i]) != sizes[i] || data[i][0] != byte('a'+i%26) || data[i][len(data[i])-1] != byte('a'+i%26) {
			t.Fatalf("message %d: seq %d, %d bytes (want %d)", i, seqs[i], len(data[i]), sizes[i])
		}
	}
	checkFor(t, 5*time.Second, func() error {
		if q := ts.QueuedBytes(); q != 0 {
			return fmt.Errorf("%d bytes still queued", q)
		}
		return nil
	})
}

// The writer goroutine's write deadline does not outlive its turn: with
// pings (writer turns) far apart from the flushers' writes, a connection
// keeps getting every message long after WriteTimeout has passed.
func TestFlushedWritesOutliveTheWriterDeadline(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.WriteTimeout = 30 * time.Millisecond
		c.PingInterval, c.PongTimeout = 150*time.Millisecond, time.Second
	})
	member := ts.connect(t)
	join(t, member, 1, "chat:dl", nil)
	pub := ts.connect(t)
	join(t, pub, 1, "chat:dl", nil)
	const msgs = 25
	go func() {
		for i := range msgs {
			if err := pub.Send(client.M{"t": "pub", "r": "chat:dl", "d": i}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // 500 ms in all: pings at 150, 300, 450
		}
	}()
	seqs, _ := collect(t, member, msgs)
	if len(seqs) != msgs {
		t.Fatalf("got %d of %d", len(seqs), msgs)
	}
	// The publisher's own copies waited in its socket: read after, not in
	// a goroutine the test's end would cut off mid-read.
	if seqs, _ := collect(t, pub, msgs); len(seqs) != msgs {
		t.Fatalf("publisher got %d of %d", len(seqs), msgs)
	}
}
