package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
)

func TestFanout(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "fanout")
	c.Rooms, c.Subs, c.Pubs, c.Rate = 2, 5, 1, 100
	c.PID = os.Getpid() // the server runs in this process
	res := run(t, c)
	checkClean(t, res)
	if res.Readers != 10 || res.Connections != 12 {
		t.Errorf("readers %d, connections %d; want 10, 12", res.Readers, res.Connections)
	}
	if res.Expected != 5*res.Published {
		t.Errorf("expected %d, want 5 × %d published", res.Expected, res.Published)
	}
	// ~60 messages in the window at 100/s; pacing may shift one or two.
	if res.Published < 50 || res.Published > 70 {
		t.Errorf("published %d in %s at 100/s", res.Published, c.Duration)
	}
	// CPU time moves in 10 ms ticks: a run this short may not see one.
	if res.Server == nil || res.Server.CPUSeconds < 0 || res.Server.RSSMaxBytes <= 0 {
		t.Errorf("server stats %+v", res.Server)
	}
	if res.Deliveries < res.Delivered {
		t.Errorf("deliveries %d below delivered %d", res.Deliveries, res.Delivered)
	}
}

func TestChat(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "chat")
	c.Rooms, c.Subs, c.Rate, c.Size = 3, 3, 90, 300
	res := run(t, c)
	checkClean(t, res)
	if res.Readers != 9 || res.Expected != 3*res.Published {
		t.Errorf("readers %d, expected %d for %d published", res.Readers, res.Expected, res.Published)
	}
}

func TestSpreadOverURLs(t *testing.T) {
	t.Parallel()
	// The same node under two URLs: connections alternate between them and
	// still meet in one room.
	a, _ := testServer(t, nil)
	c := quick(a, "fanout")
	c.URLs = []string{a, strings.Replace(a, "http://", "ws://", 1) + "/v1/ws"}
	c.Subs, c.Rate = 4, 50
	checkClean(t, run(t, c))
}

func TestConnect(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "connect")
	c.Conns, c.Rooms, c.Duration = 60, 6, 200*time.Millisecond
	c.PID = os.Getpid()
	res := run(t, c)
	cs := res.Connect
	if cs == nil || cs.Opened != 60 || cs.Failed != 0 || cs.StillOpen != 60 || cs.PerS <= 0 {
		t.Fatalf("connect stats %+v", cs)
	}
	if cs.Latency.Count != 60 || cs.Latency.P50 <= 0 {
		t.Errorf("connect latency %+v", cs.Latency)
	}
	if res.Server == nil || res.Server.RSSAfterOpenBytes <= 0 {
		t.Errorf("server stats %+v", res.Server)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// SSE observers opened and held idle, read by pollers and by a goroutine
// each, are all still open at the end.
func TestSSEIdle(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprintf("goroutine_readers=%v", goroutines), func(t *testing.T) {
			c := quick(url, "sseidle")
			c.Observers, c.Rooms, c.Duration = 40, 4, 200*time.Millisecond
			c.GoroutineReaders = goroutines
			c.PID = os.Getpid()
			res := run(t, c)
			cs := res.Connect
			if cs == nil || cs.Opened != 40 || cs.Failed != 0 || cs.StillOpen != 40 {
				t.Fatalf("connect stats %+v", cs)
			}
			if res.Server == nil || res.Server.RSSAfterOpenBytes <= 0 || len(res.Errors) != 0 {
				t.Errorf("server stats %+v, errors %v", res.Server, res.Errors)
			}
		})
	}
}

func TestNonReadersAreCut(t *testing.T) {
	// The server's socket send buffer takes megabytes (tcp_wmem's max)
	// before its queue even starts to fill, so the non-readers get big
	// payloads: 6 MB/s.
	url, srv := testServer(t, func(c *server.Config) { c.ByteRate = 64 << 20 })
	c := quick(url, "fanout")
	c.Subs, c.Rate, c.Size, c.NonReaders = 3, 200, 30000, 67
	c.Duration = 1500 * time.Millisecond
	res := run(t, c)
	nr := res.NonReaders
	if nr == nil || nr.Count != 2 {
		t.Fatalf("non-readers %+v", nr)
	}
	if nr.CutSlowConsumer+nr.CutOther != 2 || srv.SlowConsumerCuts() != 2 {
		t.Errorf("non-readers %+v, server counted %d slow-consumer cuts; errors %v, readers cut %d", nr, srv.SlowConsumerCuts(), res.Errors, res.ReadersDisconnected)
	}
	if res.Readers != 1 || res.Lost != 0 || res.Delivered != res.Expected {
		t.Errorf("readers %d: delivered %d of %d, lost %d", res.Readers, res.Delivered, res.Expected, res.Lost)
	}
}

// Non-readers whose backlog fits in the socket buffers are not cut: the
// probe reads what they hold and reports them open once nothing more comes.
func TestNonReadersStillOpen(t *testing.T) {
	url, srv := testServer(t, nil)
	c := quick(url, "fanout")
	c.Subs, c.Rate, c.NonReaders = 4, 50, 50
	res := run(t, c)
	nr := res.NonReaders
	if nr == nil || nr.Count != 2 || nr.StillOpen != 2 || srv.SlowConsumerCuts() != 0 {
		t.Errorf("non-readers %+v, server counted %d slow-consumer cuts", nr, srv.SlowConsumerCuts())
	}
}

// SSE observers, read by pollers and by a goroutine each (net/http),
// measure the same.
func TestSSE(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprintf("goroutine_readers=%v", goroutines), func(t *testing.T) {
			c := quick(url, "sse")
			c.Observers, c.Rooms, c.Rate = 6, 2, 60
			c.GoroutineReaders = goroutines
			res := run(t, c)
			checkClean(t, res)
			if res.Readers != 6 {
				t.Errorf("readers %d, want 6", res.Readers)
			}
			checkLatencyAt(t, res, canPoll && !goroutines)
		})
	}
}

// TestSSEObserverParsing runs the SSE observer against a stand-in stream
// written the way PROTOCOL §3 says: snapshot first, then message events
// whose data carries the payload's bin as base64. The stream is read by a
// goroutine (net/http) and by a poller (raw socket), its body chunked and
// close-delimited.
func TestSSEObserverParsing(t *testing.T) {
	for _, tc := range []struct {
		name             string
		polled, identity bool
	}{
		{"goroutine", false, false},
		{"goroutine/close-delimited", false, true},
		{"poller", true, false},
		{"poller/close-delimited", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.polled && !canPoll {
				t.Skip("pollers need Linux")
			}
			testSSEObserver(t, tc.polled, tc.identity)
		})
	}
}

func testSSEObserver(t *testing.T, polled, identity bool) {
	r := &runner{cfg: Config{DialTimeout: 5 * time.Second, Token: "tok"}, lat: NewHistogram()}
	rs := &roomState{name: "bench:x-0"}
	p := &publisher{id: 0, room: rs}
	rs.pubs = []*publisher{p}
	r.pubs = []*publisher{p}
	sent := now() - int64(3*time.Millisecond)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/rooms/bench:x-0/events" {
			http.NotFound(w, req)
			return
		}
		if req.Header.Get("Accept") != "text/event-stream" || req.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if identity {
			w.Header().Set("Transfer-Encoding", "identity") // no chunks: the body ends with the connection
		}
		fmt.Fprint(w, "retry: 3000\n\n: ping\n\nevent: snapshot\ndata: {\"room\":\"bench:x-0\",\"epoch\":\"E\",\"seq\":7,\"presence\":[],\"state\":{},\"log\":[]}\n\n")
		w.(http.Flusher).Flush()
		for i, ctr := range []uint32{0, 1, 1, 3, 2} {
			body := make([]byte, 40)
			putStamp(body, stamp{phase: phaseMeasured, pub: 0, counter: ctr, sentNS: sent})
			d, _ := json.Marshal(body) // []byte → base64 string, as the server's transcoding does
			fmt.Fprintf(w, "id: E:%d\r\nevent: message\r\ndata: {\"room\":\"bench:x-0\",\"seq\":%d,\"user\":\"\",\"conn\":\"c1\",\"data\":%s,\"ts\":1}\r\n\r\n", 8+i, 8+i, d)
			if i%2 == 0 {
				w.(http.Flusher).Flush()
			}
		}
		fmt.Fprint(w, "event: bye\ndata: {\"code\":1,\"msg\":\"shutdown\"}\n\n")
	}))
	defer hs.Close()
	r.sse = r.sseClient()
	defer r.sse.CloseIdleConnections()

	// A room the server does not know is its 404, whichever the path.
	missing := &sseConn{r: r, url: hs.URL, room: &roomState{name: "bench:y-0"}, polled: polled}
	missing.tr = newTracker(missing.room, 0)
	if err := missing.open(context.Background()); !errors.Is(err, errNoSSE) {
		t.Errorf("open of a missing stream: %v, want errNoSSE", err)
	}

	s := &sseConn{r: r, url: hs.URL, room: rs, polled: polled}
	s.tr = newTracker(rs, 0)
	s.tr.init()
	if err := s.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if polled && s.chunked == identity {
		t.Errorf("chunked %v, with identity %v", s.chunked, identity)
	}
	if s.tr.lastSeq < 7 {
		t.Errorf("snapshot seq %d, want 7 or above", s.tr.lastSeq)
	}
	if polled {
		pl, err := newPoller(r)
		if err != nil {
			t.Fatal(err)
		}
		r.pollers = []*poller{pl}
		r.poll(0, s)
		if s.fd <= 0 {
			t.Fatalf("the poller has no descriptor (%d)", s.fd)
		}
		r.readers.Wait()
		r.stopPollers()
	} else {
		r.readers.Add(1)
		s.readLoop()
	}
	tr := s.tr
	if tr.uniq.Load() != 4 || tr.dups != 1 || tr.ooo != 1 || tr.seqRegress != 0 || tr.lastSeq != 12 {
		t.Errorf("uniq %d dups %d ooo %d regress %d last seq %d", tr.uniq.Load(), tr.dups, tr.ooo, tr.seqRegress, tr.lastSeq)
	}
	if !tr.dead.Load() || s.byeCode != 1 {
		t.Errorf("dead %v, bye code %d: the end is not recorded", tr.dead.Load(), s.byeCode)
	}
	want := map[string]int64{"sse:http_404": 1, "sse_bye:shutdown": 1}
	if got := r.errs.snapshot(); !maps.Equal(got, want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	if snap := r.lat.Snapshot(); snap.Count != 4 || snap.P50 < 3*time.Millisecond {
		t.Errorf("latency %+v", snap)
	}
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "fanout")
	c.Subs, c.Rate = 3, 50
	res := run(t, c)
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	for _, k := range []string{"published_per_s", "delivered_per_s", "expected_per_s", "lost", "duplicates", "out_of_order", "errors", "latency_ms", "acked_pct", "ack_latency_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q", k)
		}
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms has no %q", k)
		}
	}
	buf.Reset()
	if err := res.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fanout:", "delivered", "latency ms", "p99", "publish→ok ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestProc(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU: %v, %v", cpu, err)
	}
	rss, err := procRSS(0)
	if err != nil || rss < 1<<20 {
		t.Errorf("procRSS: %v, %v", rss, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.Scenario = "nope" },
		func(c *Config) { c.Size = 5 },
		func(c *Config) { c.Rate = 0 },
		func(c *Config) { c.NonReaders = 101 },
		func(c *Config) { c.Rooms = 0 },
	} {
		c := Defaults()
		edit(&c)
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func TestDialFailureCounted(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close()
	c := quick(url, "connect")
	c.Conns, c.Duration = 3, 10*time.Millisecond
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connect.Failed != 3 || res.Errors["dial:refused"] != 3 {
		t.Errorf("failed %d, errors %v", res.Connect.Failed, res.Errors)
	}
}

// TestChatPacing checks that slow publishers spread over their interval
// each send exactly their share in the window.
func TestChatPacing(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "chat")
	// 20 members at 2 msg/s each: every one sends exactly 2 in 1 s.
	c.Rooms, c.Subs, c.Rate = 4, 5, 40
	c.Warmup, c.Duration = 300*time.Millisecond, time.Second
	res := run(t, c)
	checkClean(t, res)
	if res.Published != 40 {
		t.Errorf("published %d in the window, want 40", res.Published)
	}
}

// Subscribers read by pollers answer the server's pings themselves (raw
// masked pongs): held through several ping intervals, none is cut.
func TestPolledConnectionsAnswerPings(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, func(sc *server.Config) {
		sc.PingInterval, sc.PongTimeout = 100*time.Millisecond, 150*time.Millisecond
	})
	c := quick(url, "connect")
	c.Conns, c.Rooms, c.Duration = 20, 2, time.Second
	res := run(t, c)
	if cs := res.Connect; cs == nil || cs.Opened != 20 || cs.StillOpen != 20 {
		t.Fatalf("connect stats %+v", res.Connect)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// The gorilla reader (one goroutine per connection) measures the same.
func TestFanoutGoroutineReaders(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "fanout")
	c.Rooms, c.Subs, c.Pubs, c.Rate = 1, 5, 1, 100
	c.GoroutineReaders = true
	res := run(t, c)
	checkClean(t, res)
	if res.Readers != 5 {
		t.Errorf("readers %d, want 5", res.Readers)
	}
	checkLatencyAt(t, res, false)
}

// Polled readers on Linux measure latency to the kernel's arrival stamp
// (and the bench's read lag after it), unless asked for the read; any
// other reader measures to its read.
func TestFanoutLatencyAt(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	for _, readLatency := range []bool{false, true} {
		c := quick(url, "fanout")
		c.Rooms, c.Subs, c.Pubs, c.Rate = 1, 5, 1, 100
		c.ReadLatency = readLatency
		res := run(t, c)
		checkClean(t, res)
		checkLatencyAt(t, res, canPoll && !readLatency)
	}
}

func checkLatencyAt(t *testing.T, res *Result, arrival bool) {
	t.Helper()
	switch {
	case arrival && (res.LatencyAt != "arrival" || res.ReadLag == nil || res.ReadLag.Count == 0 || res.Latency.P50 <= 0):
		t.Errorf("latency at %q, read lag %+v, latency %+v: want arrival stamps", res.LatencyAt, res.ReadLag, res.Latency)
	case !arrival && (res.LatencyAt != "read" || res.ReadLag != nil):
		t.Errorf("latency at %q, read lag %+v: want the read time", res.LatencyAt, res.ReadLag)
	}
}

// compressRouter turns compression on in every namespace.
type compressRouter struct{ cluster.Router }

func (r compressRouter) Settings(name string) room.Namespace {
	ns := r.Router.Settings(name)
	ns.Compression = true
	return ns
}

// With --deflate and --payload-text against a node that compresses, the
// subscribers (polled, reading raw frames) inflate what comes compressed,
// the publishers' compressed publishes go through, and nothing is lost.
func TestFanoutDeflate(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, func(sc *server.Config) {
		sc.Deflate, sc.DeflateMinBytes = true, 100
		sc.Router = compressRouter{sc.Router}
		sc.Metrics = server.NewPrometheus()
	})
	c := quick(url, "fanout")
	c.Rooms, c.Subs, c.Pubs, c.Rate, c.Size = 1, 5, 1, 100, 300
	c.Deflate, c.PayloadText = true, true
	res := run(t, c)
	checkClean(t, res)
	n, raw, wire := res.ServerCounters["roomd_ws_deflate_messages_total"], res.ServerCounters["roomd_ws_deflate_raw_bytes_total"], res.ServerCounters["roomd_ws_deflate_wire_bytes_total"]
	// Chat text without context between messages: about a fifth less.
	// Every delivery went compressed (several to a message at times).
	if n == 0 || raw < 0.8*float64(res.Published*5*int64(c.Size)) || wire > raw*0.9 {
		t.Errorf("%v messages compressed, %v bytes to %v, for %d published", n, raw, wire, res.Published)
	}
}
