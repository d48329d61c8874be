package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// sseEvent is one parsed item of an event stream: an event (Name, ID, Data),
// a retry field, or a comment.
type sseEvent struct {
	Name    string
	ID      string
	HasID   bool
	Data    string
	Retry   string
	Comment string
}

// sseStream reads an event stream.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	rd     *bufio.Reader
	cancel context.CancelFunc
}

// sseClient returns an HTTP client of its own, so that no connection
// outlives the test; dial may be nil.
func sseClient(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{DialContext: dial, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// sseGet sends a GET; the caller closes the response's body.
func sseGet(t *testing.T, hc *http.Client, url string, hdr http.Header) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return resp, cancel
}

// openSSE opens a stream and checks it started well.
func openSSE(t *testing.T, hc *http.Client, url string, hdr http.Header) *sseStream {
	t.Helper()
	resp, cancel := sseGet(t, hc, url, hdr)
	s := &sseStream{t: t, resp: resp, rd: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if ev := s.next(); ev.Retry != "3000" {
		t.Fatalf("first item %+v, want retry: 3000", ev)
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// read returns the next event, retry field or comment.
func (s *sseStream) read() (sseEvent, error) {
	var ev sseEvent
	pending := false
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			if pending || line != "" {
				return ev, fmt.Errorf("stream ended mid-event: %w", err)
			}
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if pending {
				return ev, nil
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			if pending {
				continue
			}
			return sseEvent{Comment: strings.TrimSpace(line[1:])}, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		pending = true
		switch field {
		case "event":
			ev.Name = value
		case "id":
			ev.ID, ev.HasID = value, true
		case "data":
			if ev.Data != "" {
				ev.Data += "\n"
			}
			ev.Data += value
		case "retry":
			ev.Retry = value
		default:
			return ev, fmt.Errorf("unknown field %q", field)
		}
	}
}

func (s *sseStream) next() sseEvent {
	s.t.Helper()
	ev, err := s.read()
	if err != nil {
		s.t.Fatalf("reading the stream: %v", err)
	}
	return ev
}

// expect returns the next event named name, skipping comments and the
// events named in skip; any other event fails the test.
func (s *sseStream) expect(name string, skip ...string) sseEvent {
	s.t.Helper()
	for {
		ev := s.next()
		switch {
		case ev.Comment != "" || ev.Retry != "":
		case ev.Name == name:
			return ev
		case contains(skip, ev.Name):
		default:
			s.t.Fatalf("got %s %s, want %s", ev.Name, ev.Data, name)
		}
	}
}

func jsonOf(t *testing.T, ev sseEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("event %s: data %q: %v", ev.Name, ev.Data, err)
	}
	return m
}

func num(v any) uint64 {
	f, _ := v.(float64)
	return uint64(f)
}

// expectBye reads until the stream's bye, checks its code, then checks that
// the stream ends.
func (s *sseStream) expectBye(code protocol.Code, skip ...string) {
	s.t.Helper()
	ev := s.expect("bye", append(skip, "message", "state", "presence", "ephemeral", "snapshot")...)
	m := jsonOf(s.t, ev)
	if protocol.Code(num(m["code"])) != code || m["name"] != code.String() || m["msg"] == "" {
		s.t.Fatalf("bye %s, want code %d", ev.Data, code)
	}
	if ev, err := s.read(); !errors.Is(err, io.EOF) {
		s.t.Fatalf("after bye: %+v, %v; want the end of the stream", ev, err)
	}
}

func eventsURL(ts *testServer, name, query string) string {
	u := ts.URL + "/v1/rooms/" + name + "/events"
	if query != "" {
		u += "?" + query
	}
	return u
}

// publish sends durable messages and waits for their acknowledgements.
func publish(t *testing.T, c *client.Conn, name string, data ...any) []uint64 {
	t.Helper()
	var seqs []uint64
	for i, d := range data {
		send(t, c, client.M{"t": "pub", "id": 1000 + i, "r": name, "d": d})
		ok := expect(t, c, protocol.TypeOK, protocol.TypeMsg, protocol.TypeState, protocol.TypePres, protocol.TypeEph)
		seqs = append(seqs, ok.S)
	}
	return seqs
}

func TestSSESnapshotThenLiveEvents(t *testing.T) {
	ts := newTestServer(t, nil)
	hc := sseClient(t, nil)
	a := ts.connect(t)
	join(t, a, 1, "chat:sse", client.M{"p": client.M{"name": "ann"}})
	publish(t, a, "chat:sse", "m1", "m2", "m3")
	send(t, a, client.M{"t": "set", "id": 9, "r": "chat:sse", "k": "color", "d": "red"})
	expect(t, a, protocol.TypeOK, protocol.TypeState)

	s := openSSE(t, hc, eventsURL(ts, "chat:sse", "h=2"), nil)
	h := s.resp.Header
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
		"X-Roomd-Replay-From": "snapshot",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	epoch := h.Get("X-Roomd-Epoch")
	snap := s.expect("snapshot")
	if snap.ID != epoch+":4" || epoch == "" {
		t.Fatalf("snapshot id %q, epoch header %q", snap.ID, epoch)
	}
	m := jsonOf(t, snap)
	if m["room"] != "chat:sse" || m["epoch"] != epoch || num(m["seq"]) != 4 {
		t.Fatalf("snapshot %s", snap.Data)
	}
	pres, _ := m["presence"].([]any)
	if len(pres) != 1 || pres[0].(map[string]any)["conn"] != a.Welcome.C ||
		fmt.Sprint(pres[0].(map[string]any)["data"]) != "map[name:ann]" {
		t.Fatalf("snapshot presence %v", m["presence"])
	}
	if fmt.Sprint(m["state"]) != "map[color:red]" {
		t.Fatalf("snapshot state %v", m["state"])
	}
	log, _ := m["log"].([]any)
	if len(log) != 2 || num(log[0].(map[string]any)["seq"]) != 2 || log[1].(map[string]any)["data"] != "m3" {
		t.Fatalf("snapshot log %v", m["log"])
	}

	b := ts.connect(t)
	join(t, b, 1, "chat:sse", client.M{"p": client.M{"name": "bob"}})
	// b's join, in the window's event (which may restate a's, whose window
	// the snapshot fell in).
	p := jsonOf(t, s.expect("presence"))
	j, _ := p["join"].([]any)
	if len(j) == 0 || j[len(j)-1].(map[string]any)["conn"] != b.Welcome.C {
		t.Fatalf("presence join %v", p)
	}
	publish(t, b, "chat:sse", client.M{"text": "hi"})
	msg := s.expect("message")
	m = jsonOf(t, msg)
	if msg.ID != epoch+":5" || num(m["seq"]) != 5 || m["conn"] != b.Welcome.C || m["room"] != "chat:sse" ||
		fmt.Sprint(m["data"]) != "map[text:hi]" || num(m["ts"]) == 0 {
		t.Fatalf("message %q %s", msg.ID, msg.Data)
	}
	send(t, b, client.M{"t": "set", "id": 2, "r": "chat:sse", "k": "color", "d": "blue"})
	send(t, b, client.M{"t": "set", "id": 3, "r": "chat:sse", "k": "color"})
	st := s.expect("state")
	m = jsonOf(t, st)
	if st.ID != epoch+":6" || m["key"] != "color" || m["data"] != "blue" || m["deleted"] == true {
		t.Fatalf("state %q %s", st.ID, st.Data)
	}
	st = s.expect("state")
	if m = jsonOf(t, st); st.ID != epoch+":7" || m["deleted"] != true {
		t.Fatalf("state delete %q %s", st.ID, st.Data)
	}
	// Ephemeral messages are not for this stream: the next event is the
	// marker.
	send(t, b, client.M{"t": "pub", "r": "chat:sse", "d": "eph", "eph": true})
	publish(t, b, "chat:sse", "marker")
	if m = jsonOf(t, s.expect("message")); m["data"] != "marker" {
		t.Fatalf("after ephemeral: %v", m)
	}
	send(t, b, client.M{"t": "leave", "id": 4, "r": "chat:sse"})
	p = jsonOf(t, s.expect("presence"))
	if l, _ := p["leave"].([]any); len(l) != 1 || l[0] != b.Welcome.C {
		t.Fatalf("presence leave %v", p)
	}
	if got := ts.rooms.Stats().Observers; got != 1 {
		t.Fatalf("room observers = %d", got)
	}
}

func TestSSEEphemeralOnlyWhenAsked(t *testing.T) {
	ts := newTestServer(t, nil)
	hc := sseClient(t, nil)
	a := ts.connect(t)
	join(t, a, 1, "chat:eph", nil)
	plain := openSSE(t, hc, eventsURL(ts, "chat:eph", ""), nil)
	eph := openSSE(t, hc, eventsURL(ts, "chat:eph", "ephemeral=1"), nil)
	plain.expect("snapshot")
	eph.expect("snapshot")
	send(t, a, client.M{"t": "pub", "r": "chat:eph", "d": client.M{"x": 1}, "eph": true})
	publish(t, a, "chat:eph", "marker")
	e := eph.expect("ephemeral")
	if m := jsonOf(t, e); fmt.Sprint(m["data"]) != "map[x:1]" || m["conn"] != a.Welcome.C || e.HasID {
		t.Fatalf("ephemeral %+v", e)
	}
	eph.expect("message")
	if m := jsonOf(t, plain.expect("message")); m["data"] != "marker" {
		t.Fatalf("plain stream: %v", m)
	}
}

// A stream reconnected again and again with Last-Event-ID (or ?since=)
// while a WebSocket member publishes gets every seq exactly once, in order.
func TestSSEResumeIsExactUnderConcurrentPublishing(t *testing.T) {
	const n = 600
	ts := newTestServer(t, func(c *Config, r *room.Config) {
		c.FrameRate, c.FrameBurst = 100000, 100000
		r.Default.HistorySize = 2 * n
	})
	hc := sseClient(t, nil)
	pub := ts.connect(t)
	join(t, pub, 1, "chat:resume", nil)
	s := openSSE(t, hc, eventsURL(ts, "chat:resume", ""), nil)
	snap := s.expect("snapshot")
	epoch := s.resp.Header.Get("X-Roomd-Epoch")
	if snap.ID != epoch+":0" {
		t.Fatalf("snapshot id %q", snap.ID)
	}

	done := make(chan struct{})
	go func() { // the member publishes while the observer comes and goes
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 1; i <= n; i += 3 {
			<-tick.C
			batch := []any{}
			for j := i; j < i+3 && j <= n; j++ {
				batch = append(batch, client.M{"t": "pub", "r": "chat:resume", "d": j})
			}
			if err := pub.Send(batch...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { <-done }()

	var got []uint64
	var last string // the id of the last event received
	reconnects, mid := 0, 0
	for len(got) < n {
		ev := s.expect("message")
		m := jsonOf(t, ev)
		seq := num(m["seq"])
		if ev.ID != epoch+":"+strconv.FormatUint(seq, 10) || num(m["data"]) != seq {
			t.Fatalf("event id %q for %s", ev.ID, ev.Data)
		}
		got = append(got, seq)
		last = ev.ID
		if len(got)%97 == 0 && len(got) < n {
			s.close()
			select {
			case <-done:
			default:
				mid++
			}
			reconnects++
			hdr := http.Header{"Last-Event-ID": {last}}
			url := eventsURL(ts, "chat:resume", "")
			if reconnects%2 == 0 {
				hdr, url = nil, eventsURL(ts, "chat:resume", "since="+last)
			}
			s = openSSE(t, hc, url, hdr)
			if h := s.resp.Header; h.Get("X-Roomd-Epoch") != epoch || h.Get("X-Roomd-Replay-From") != strconv.FormatUint(seq+1, 10) {
				t.Fatalf("resume after %d: epoch %q, replay from %q", seq, h.Get("X-Roomd-Epoch"), h.Get("X-Roomd-Replay-From"))
			}
		}
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("seq %d at %d: gap, duplicate or reorder", seq, i)
		}
	}
	if reconnects < 5 {
		t.Fatalf("only %d reconnects", reconnects)
	}
	t.Logf("%d reconnects, %d while publishing", reconnects, mid)
}

func TestSSESinceReplaysFromTheGivenSeq(t *testing.T) {
	ts := newTestServer(t, nil)
	hc := sseClient(t, nil)
	a := ts.connect(t)
	j := join(t, a, 1, "chat:since", nil)
	publish(t, a, "chat:since", 1, 2, 3, 4)
	s := openSSE(t, hc, eventsURL(ts, "chat:since", "since="+j.E+":2"), nil)
	if got := s.resp.Header.Get("X-Roomd-Replay-From"); got != "3" {
		t.Fatalf("replay from %q", got)
	}
	for _, want := range []uint64{3, 4} {
		if ev := s.expect("message"); ev.ID != j.E+":"+strconv.FormatUint(want, 10) {
			t.Fatalf("replayed %q, want seq %d", ev.ID, want)
		}
	}
	publish(t, a, "chat:since", 5)
	if ev := s.expect("message"); ev.ID != j.E+":5" {
		t.Fatalf("live %q", ev.ID)
	}

	resp, cancel := sseGet(t, hc, eventsURL(ts, "chat:since", "since=garbage"), nil)
	defer cancel()
	expectAPIError(t, resp, http.StatusBadRequest, protocol.CodeBadRequest)
}

func TestSSEResetWhenContinuityIsLost(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, r *room.Config) { r.Default.HistorySize = 5 })
	hc := sseClient(t, nil)
	a := ts.connect(t)
	j := join(t, a, 1, "chat:reset", nil)
	publish(t, a, "chat:reset", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for name, id := range map[string]string{
		"unknown epoch": "not-an-epoch:3",
		"too old":       j.E + ":2",
		"ahead":         j.E + ":99",
		"unreadable":    "garbage",
	} {
		t.Run(name, func(t *testing.T) {
			s := openSSE(t, hc, eventsURL(ts, "chat:reset", "h=3"), http.Header{"Last-Event-ID": {id}})
			if got := s.resp.Header.Get("X-Roomd-Replay-From"); got != "snapshot" {
				t.Fatalf("replay from %q", got)
			}
			snap := s.expect("snapshot")
			m := jsonOf(t, snap)
			if snap.ID != j.E+":10" || num(m["seq"]) != 10 || len(m["log"].([]any)) != 3 {
				t.Fatalf("snapshot %q %s", snap.ID, snap.Data)
			}
		})
	}
}

// Both ways a raw stream waits (parked, or in its handler when parking is
// off) ping an idle stream and notice the client going.
func TestSSEPingWhenIdle(t *testing.T) {
	for _, park := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("park_after=%v", park), func(t *testing.T) {
			ts := newTestServer(t, func(c *Config, _ *room.Config) {
				c.SSEPingInterval = 20 * time.Millisecond
				c.ParkAfter = park
			})
			hc := sseClient(t, nil)
			s := openSSE(t, hc, eventsURL(ts, "chat:ping", ""), nil)
			s.expect("snapshot")
			for i := 0; i < 3; i++ {
				if ev := s.next(); ev.Comment != "ping" {
					t.Fatalf("idle stream sent %+v, want a ping comment", ev)
				}
			}
		})
	}
}

func TestSSEClientGoneLeavesTheRoom(t *testing.T) {
	for _, park := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("park_after=%v", park), func(t *testing.T) {
			ts := newTestServer(t, func(c *Config, _ *room.Config) { c.ParkAfter = park })
			hc := sseClient(t, nil)
			s := openSSE(t, hc, eventsURL(ts, "chat:gone", ""), nil)
			s.expect("snapshot")
			if ts.Observers() != 1 || ts.rooms.Stats().Observers != 1 {
				t.Fatalf("observers %d, in rooms %d", ts.Observers(), ts.rooms.Stats().Observers)
			}
			s.close()
			checkFor(t, 5*time.Second, func() error {
				if n, r := ts.Observers(), ts.rooms.Stats().Observers; n != 0 || r != 0 {
					return fmt.Errorf("observers %d, in rooms %d", n, r)
				}
				return nil
			})
		})
	}
}

func TestSSEShutdownSaysBye(t *testing.T) {
	ts := newTestServer(t, nil)
	hc := sseClient(t, nil)
	s1 := openSSE(t, hc, eventsURL(ts, "chat:bye", ""), nil)
	s2 := openSSE(t, hc, ts.URL+"/v1/events?room=chat:bye&room=chat:bye2", nil)
	s1.expect("snapshot")
	s2.expect("snapshot")
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errc <- ts.Shutdown(ctx)
	}()
	s1.expectBye(protocol.CodeShutdown)
	s2.expectBye(protocol.CodeShutdown)
	if err := <-errc; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// A stream opened while draining says bye at once, so EventSource
	// reconnects (to another node).
	s3 := openSSE(t, hc, eventsURL(ts, "chat:bye", ""), nil)
	s3.expectBye(protocol.CodeShutdown)
}

// A stream whose client stops reading is cut with bye slow_consumer, while
// another observer of the room receives every event.
func TestSSESlowObserverIsCutWhileOthersReceiveEverything(t *testing.T) {
	const (
		msgs     = 300
		queueMax = 64 << 10
	)
	ts := newTestServer(t, func(c *Config, r *room.Config) {
		c.SSEQueueMaxBytes = queueMax
		c.FrameRate, c.FrameBurst, c.ByteRate = 100000, 100000, 1<<30
		r.Default.HistorySize = 10
	})
	slowURL, dialer := slowListener(t, ts)

	fast := openSSE(t, sseClient(t, nil), eventsURL(ts, "chat:slow", ""), nil)
	slow := openSSE(t, sseClient(t, dialer.DialContext), slowURL+"/v1/rooms/chat:slow/events", nil)
	fast.expect("snapshot")
	slow.expect("snapshot")

	pub := ts.connect(t)
	join(t, pub, 1, "chat:slow", nil)
	payload := strings.Repeat("p", 1<<10)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Paced, so that the fast reader keeps up even under the race
		// detector, while the slow one falls behind by everything.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < msgs; i += 5 {
			<-tick.C
			if err := pub.Send(repeat(client.M{"t": "pub", "r": "chat:slow", "d": payload}, 5)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer wg.Wait()
	for i := 1; i <= msgs; i++ {
		ev := fast.expect("message", "presence")
		if m := jsonOf(t, ev); num(m["seq"]) != uint64(i) {
			t.Fatalf("fast observer: seq %v at %d", m["seq"], i)
		}
	}
	if got := ts.SlowConsumerCuts(); got != 1 {
		t.Fatalf("slow-consumer cuts = %d, want 1", got)
	}
	// The slow client, reading at last, finds what was written before the
	// cut, then bye slow_consumer, then the end of the stream.
	slow.expectBye(protocol.CodeSlowConsumer, "presence")
	checkFor(t, 5*time.Second, func() error {
		if n := ts.Observers(); n != 1 {
			return fmt.Errorf("%d observers", n)
		}
		return nil
	})
}

func expectAPIError(t *testing.T, resp *http.Response, status int, code protocol.Code) {
	t.Helper()
	defer resp.Body.Close()
	var body apiError
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: body: %v", resp.Status, err)
	}
	if resp.StatusCode != status || body.Error.Code != code || body.Error.Name != code.String() {
		t.Fatalf("%s %+v, want %d code %d", resp.Status, body, status, code)
	}
}

func TestSSEAuth(t *testing.T) {
	secret := []byte("sse-test-secret-0123456789abcdef")
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		v, err := auth.NewVerifier(auth.Config{HMACSecrets: [][]byte{secret}})
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = v
	})
	mint := func(p auth.Perm) string {
		tok, err := auth.Mint(secret, "u1", []auth.Grant{{Pattern: "chat:*", Perms: p}}, nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	observe, joinOnly := mint(auth.PermObserve), mint(auth.PermJoin)
	hc := sseClient(t, nil)
	url := eventsURL(ts, "chat:auth", "")
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	for name, tc := range map[string]struct {
		url    string
		hdr    http.Header
		status int
		code   protocol.Code
	}{
		"no token":        {url, nil, http.StatusUnauthorized, protocol.CodeUnauthorized},
		"bad token":       {url, bearer("x.y.z"), http.StatusUnauthorized, protocol.CodeUnauthorized},
		"other secret":    {url, bearer(must(auth.Mint([]byte("another-secret-0123456789abcdef!"), "u1", []auth.Grant{{Pattern: "chat:*", Perms: auth.PermObserve}}, nil, time.Minute))), http.StatusUnauthorized, protocol.CodeUnauthorized},
		"no observe":      {url, bearer(joinOnly), http.StatusForbidden, protocol.CodeForbidden},
		"other room":      {eventsURL(ts, "board:1", ""), bearer(observe), http.StatusForbidden, protocol.CodeForbidden},
		"one room of two": {ts.URL + "/v1/events?room=chat:a&room=board:1", bearer(observe), http.StatusForbidden, protocol.CodeForbidden},
		"bad room":        {eventsURL(ts, strings.Repeat("x", 129), ""), bearer(observe), http.StatusBadRequest, protocol.CodeInvalidRoom},
		"bad h":           {eventsURL(ts, "chat:auth", "h=-1"), bearer(observe), http.StatusBadRequest, protocol.CodeBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			resp, cancel := sseGet(t, hc, tc.url, tc.hdr)
			defer cancel()
			expectAPIError(t, resp, tc.status, tc.code)
		})
	}
	for name, open := range map[string]func() *sseStream{
		"bearer": func() *sseStream { return openSSE(t, hc, url, bearer(observe)) },
		"cookie": func() *sseStream {
			return openSSE(t, hc, url, http.Header{"Cookie": {auth.CookieName + "=" + observe}})
		},
		"query": func() *sseStream { return openSSE(t, hc, url+"?token="+observe, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			s := open()
			s.expect("snapshot")
			s.close()
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSSECORS(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) { c.AllowedOrigins = []string{"https://ok.example"} })
	hc := sseClient(t, nil)
	s := openSSE(t, hc, eventsURL(ts, "chat:cors", ""), http.Header{"Origin": {"https://ok.example"}})
	if h := s.resp.Header; h.Get("Access-Control-Allow-Origin") != "https://ok.example" ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "X-Roomd-Replay-From") {
		t.Fatalf("CORS headers %v", h)
	}
	s.expect("snapshot")
	resp, cancel := sseGet(t, hc, eventsURL(ts, "chat:cors", ""), http.Header{"Origin": {"https://evil.example"}})
	defer cancel()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a denied origin got Access-Control-Allow-Origin")
	}
	expectAPIError(t, resp, http.StatusForbidden, protocol.CodeForbidden)
}

func TestSSEMultiRoomStreamResumesEveryRoom(t *testing.T) {
	ts := newTestServer(t, nil)
	hc := sseClient(t, nil)
	a := ts.connect(t)
	ja := join(t, a, 1, "chat:ma", nil)
	jb := join(t, a, 2, "chat:mb", nil)
	publish(t, a, "chat:ma", "a1")
	url := ts.URL + "/v1/events?room=chat:ma&room=chat:mb"
	s := openSSE(t, hc, url, nil)
	if h := s.resp.Header; h.Get("X-Roomd-Epoch") != "chat:ma="+ja.E+",chat:mb="+jb.E ||
		h.Get("X-Roomd-Replay-From") != "chat:ma=snapshot,chat:mb=snapshot" {
		t.Fatalf("headers %v", h)
	}
	snaps := map[string]sseEvent{}
	for range 2 {
		ev := s.expect("snapshot")
		snaps[jsonOf(t, ev)["room"].(string)] = ev
	}
	if snaps["chat:mb"].ID != "chat:ma="+ja.E+":1,chat:mb="+jb.E+":0" {
		t.Fatalf("ids %q %q", snaps["chat:ma"].ID, snaps["chat:mb"].ID)
	}
	publish(t, a, "chat:mb", "b1")
	publish(t, a, "chat:ma", "a2")
	ev := s.expect("message", "presence")
	if m := jsonOf(t, ev); m["room"] != "chat:mb" || ev.ID != "chat:ma="+ja.E+":1,chat:mb="+jb.E+":1" {
		t.Fatalf("%q %s", ev.ID, ev.Data)
	}
	ev = s.expect("message", "presence")
	if m := jsonOf(t, ev); m["room"] != "chat:ma" || ev.ID != "chat:ma="+ja.E+":2,chat:mb="+jb.E+":1" {
		t.Fatalf("%q %s", ev.ID, ev.Data)
	}
	last := ev.ID
	s.close()

	publish(t, a, "chat:ma", "a3")
	publish(t, a, "chat:mb", "b2")
	s = openSSE(t, hc, url, http.Header{"Last-Event-ID": {last}})
	if got := s.resp.Header.Get("X-Roomd-Replay-From"); got != "chat:ma=3,chat:mb=2" {
		t.Fatalf("replay from %q", got)
	}
	var data []string
	for range 2 {
		m := jsonOf(t, s.expect("message", "presence"))
		data = append(data, fmt.Sprint(m["room"], "/", m["data"]))
	}
	if strings.Join(data, " ") != "chat:ma/a3 chat:mb/b2" {
		t.Fatalf("replayed %v", data)
	}

	// A room missing from Last-Event-ID starts with a snapshot.
	s.close()
	s = openSSE(t, hc, url, http.Header{"Last-Event-ID": {"chat:ma=" + ja.E + ":3"}})
	if got := s.resp.Header.Get("X-Roomd-Replay-From"); got != "chat:ma=4,chat:mb=snapshot" {
		t.Fatalf("replay from %q", got)
	}
	if m := jsonOf(t, s.expect("snapshot")); m["room"] != "chat:mb" {
		t.Fatalf("snapshot of %v", m["room"])
	}

	for _, bad := range []string{"/v1/events", "/v1/events?room=chat:ma&room=chat:ma"} {
		resp, cancel := sseGet(t, hc, ts.URL+bad, nil)
		expectAPIError(t, resp, http.StatusBadRequest, protocol.CodeBadRequest)
		cancel()
	}
}

func TestSSEQueueDropsEphemeralFirstThenCuts(t *testing.T) {
	o := &sseObserver{
		srv:  &Server{cfg: Config{SSEQueueMaxBytes: 400, Metrics: noopMetrics{}}},
		eph:  true,
		wake: make(chan struct{}, 1),
	}
	ev := func(k room.Kind, size int) *room.Event { return &room.Event{Kind: k, Frame: make([]byte, size)} }
	o.Deliver(ev(room.KindEph, 36))  // 100
	o.Deliver(ev(room.KindMsg, 136)) // 200
	o.Deliver(ev(room.KindEph, 36))  // 100
	o.Deliver(ev(room.KindEph, 100)) // does not fit: dropped
	if len(o.queue) != 3 || o.qbytes != 400 || o.dropped != 1 {
		t.Fatalf("eph drop: %d items, %d bytes, %d dropped", len(o.queue), o.qbytes, o.dropped)
	}
	o.Deliver(ev(room.KindPres, 136)) // evicts the ephemerals
	if len(o.queue) != 2 || o.qbytes != 400 || o.dropped != 3 || o.bye != nil {
		t.Fatalf("eviction: %d items, %d bytes, %d dropped, bye %v", len(o.queue), o.qbytes, o.dropped, o.bye)
	}
	o.Deliver(ev(room.KindState, 1)) // durable, no room left: cut
	if o.bye == nil || o.bye.code != protocol.CodeSlowConsumer || len(o.queue) != 0 || o.qbytes != 0 {
		t.Fatalf("cut: bye %v, %d items, %d bytes", o.bye, len(o.queue), o.qbytes)
	}
	o.Deliver(ev(room.KindMsg, 1)) // after the cut: ignored
	if len(o.queue) != 0 || o.srv.SlowConsumerCuts() != 1 {
		t.Fatalf("after the cut: %d items, %d cuts", len(o.queue), o.srv.SlowConsumerCuts())
	}

	// A lone event larger than the bound still goes into an empty queue.
	o = &sseObserver{srv: o.srv, wake: make(chan struct{}, 1)}
	o.Deliver(ev(room.KindMsg, 1000))
	if len(o.queue) != 1 || o.bye != nil {
		t.Fatalf("large event: %d items, bye %v", len(o.queue), o.bye)
	}
}

func TestSSEParseCursor(t *testing.T) {
	one, two := []string{"chat:a"}, []string{"chat:a", "chat:b"}
	for _, tc := range []struct {
		c     string
		names []string
		multi bool
		want  string // fmt of the map, "!" for unreadable
	}{
		{"", one, false, "map[]"},
		{"E1:7", one, false, "map[chat:a:{E1 7}]"},
		{"e:p:o:ch:12", one, false, "map[chat:a:{e:p:o:ch 12}]"},
		{":7", one, false, "!"},
		{"E1:", one, false, "!"},
		{"E1:-1", one, false, "!"},
		{"E1", one, false, "!"},
		{"chat:a=E1:7,chat:b=E2:0", two, true, "map[chat:a:{E1 7} chat:b:{E2 0}]"},
		{"chat:a=E1:7", two, true, "map[chat:a:{E1 7}]"},
		{"chat:a=E1:7,chat:b", two, true, "!"},
		{"chat:a=E1", two, true, "!"},
	} {
		got, ok := parseCursor(tc.c, tc.names, tc.multi)
		s := "!"
		if ok {
			m := map[string]protocol.Since{}
			for k, v := range got {
				m[k] = *v
			}
			s = fmt.Sprint(m)
		}
		if s != tc.want {
			t.Errorf("parseCursor(%q) = %s, want %s", tc.c, s, tc.want)
		}
	}
}

// rawStreams counts the server's streams that write their own response.
func rawStreams(s *Server) (raw, all int) {
	s.observers.mu.Lock()
	defer s.observers.mu.Unlock()
	for o := range s.observers.set {
		o.mu.Lock()
		if o.raw != nil {
			raw++
		}
		o.mu.Unlock()
		all++
	}
	return raw, all
}

// On plain HTTP/1.1 a stream takes its connection and writes chunks itself
// (Linux); over TLS it goes on through net/http. Both say the same.
func TestSSERawOnPlainHTTPAndNetHTTPOverTLS(t *testing.T) {
	ts := newTestServer(t, nil)
	pub := ts.connect(t)
	join(t, pub, 1, "chat:raw", nil)

	tlsSrv := httptest.NewTLSServer(ts.Handler())
	t.Cleanup(tlsSrv.Close)
	for _, tc := range []struct {
		name string
		url  string
		hc   *http.Client
		raw  int
	}{
		{"plain", eventsURL(ts, "chat:raw", ""), sseClient(t, nil), 1},
		{"tls", tlsSrv.URL + "/v1/rooms/chat:raw/events", tlsSrv.Client(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSSE(t, tc.hc, tc.url, nil)
			s.expect("snapshot")
			if tc.name == "plain" && s.resp.TransferEncoding[0] != "chunked" {
				t.Fatalf("transfer encoding %v", s.resp.TransferEncoding)
			}
			if h := s.resp.Header.Get("X-Roomd-Epoch"); h == "" || s.resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("headers %v", s.resp.Header)
			}
			raw, all := rawStreams(ts.Server)
			want := tc.raw
			if !netio.CanDirect {
				want = 0
			}
			if raw != want || all != 1 {
				t.Fatalf("%d of %d streams raw, want %d of 1", raw, all, want)
			}
			seqs := publish(t, pub, "chat:raw", "a", strings.Repeat("b", 30000), "c")
			for i, seq := range seqs {
				ev := s.expect("message", "presence")
				if m := jsonOf(t, ev); num(m["seq"]) != seq {
					t.Fatalf("event %d: %v, want seq %d", i, m, seq)
				}
			}
			s.close()
			checkFor(t, 5*time.Second, func() error {
				if n := ts.Observers(); n != 0 {
					return fmt.Errorf("%d observers", n)
				}
				return nil
			})
		})
	}
}

// A raw stream's writes outlive the deadline of its first write and of its
// writer goroutine's turns.
func TestSSEStreamOutlivesTheWriteTimeout(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.WriteTimeout = 50 * time.Millisecond
		c.SSEPingInterval = 30 * time.Millisecond
	})
	pub := ts.connect(t)
	join(t, pub, 1, "chat:sdl", nil)
	s := openSSE(t, sseClient(t, nil), eventsURL(ts, "chat:sdl", ""), nil)
	s.expect("snapshot")
	for i := range 10 {
		time.Sleep(40 * time.Millisecond) // pings between: writer turns
		seq := publish(t, pub, "chat:sdl", i)[0]
		ev := s.expect("message", "presence")
		if m := jsonOf(t, ev); num(m["seq"]) != seq {
			t.Fatalf("event %d: %v, want seq %d", i, m, seq)
		}
	}
}

// A raw stream parks: its handler returns and it holds no goroutine; the
// parker notices the client going, and the observer leaves its room.
func TestSSEStreamsHoldNoGoroutine(t *testing.T) {
	if !netio.CanPark {
		t.Skip("streams park on Linux only")
	}
	ts := newTestServer(t, nil)
	base := runtime.NumGoroutine()
	const n = 20
	var conns []net.Conn
	for range n {
		c, _ := openRawSSE(t, ts.URL, "/v1/rooms/chat:park/events", "")
		conns = append(conns, c)
	}
	checkFor(t, 5*time.Second, func() error {
		if g := runtime.NumGoroutine(); g > base+10 {
			return fmt.Errorf("%d goroutines with %d streams open (%d before)", g, n, base)
		}
		return nil
	})
	if ts.Observers() != n || ts.rooms.Stats().Observers != n {
		t.Fatalf("observers %d, in rooms %d", ts.Observers(), ts.rooms.Stats().Observers)
	}
	for _, c := range conns {
		c.Close()
	}
	checkFor(t, 5*time.Second, func() error {
		if o, r := ts.Observers(), ts.rooms.Stats().Observers; o != 0 || r != 0 {
			return fmt.Errorf("observers %d, in rooms %d", o, r)
		}
		return nil
	})
}

// openRawSSE opens a stream on a socket of its own, sending extra header
// lines (each ending in "\r\n"), and reads up to its snapshot's event
// line.
func openRawSSE(t testing.TB, base, path, extra string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n%s\r\n", path, extra)
	rd := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for { // the head, then the retry line, then the snapshot
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "event: snapshot") {
			return c, rd
		}
	}
}

// A parked stream keeps nothing of net/http's (the request, the
// connection's read and write buffers: 10 KB an observer), and, woken by
// events, writes them in order with their ids; Last-Event-ID resumes it.
func TestSSEParkedStreamKeepsNoRequest(t *testing.T) {
	if !netio.CanPark {
		t.Skip("streams park on Linux only")
	}
	ts := newTestServer(t, nil)
	var mu sync.Mutex
	var reqs []weak.Pointer[http.Request]
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, weak.Make(r))
		mu.Unlock()
		ts.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	pub := ts.connect(t)
	j := join(t, pub, 1, "chat:weak", nil)
	_, rd := openRawSSE(t, hs.URL, "/v1/rooms/chat:weak/events", "")
	checkFor(t, 5*time.Second, func() error {
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		if reqs[0].Value() != nil {
			return errors.New("the parked stream's request is still reachable")
		}
		return nil
	})

	// The chunked body, read by line: each message's id line, then its
	// data line.
	line := func() string {
		l, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(l, "\n")
	}
	_ = line() // the snapshot's id
	seqs := publish(t, pub, "chat:weak", "a", "b", "c")
	var last string
	for i, seq := range seqs {
		for l := line(); l != "event: message"; l = line() {
		}
		id, data := line(), line()
		if want := "id: " + j.E + ":" + strconv.FormatUint(seq, 10); id != want || !strings.Contains(data, `"seq":`+strconv.FormatUint(seq, 10)+",") {
			t.Fatalf("event %d: %q %q, want %q", i, id, data, want)
		}
		last = strings.TrimPrefix(id, "id: ")
	}
	more := publish(t, pub, "chat:weak", "d")
	s := openSSE(t, sseClient(t, nil), hs.URL+"/v1/rooms/chat:weak/events", http.Header{"Last-Event-ID": {last}})
	if ev := s.expect("message", "presence"); ev.ID != j.E+":"+strconv.FormatUint(more[0], 10) {
		t.Fatalf("resumed with %q %s", ev.ID, ev.Data)
	}
}

// Each event is encoded once, whatever streams observe its room: one-room
// streams write the shared frame as it is; a multi-room stream, the same
// frame's lines around its own id; the net/http writer (TLS) the same.
func TestSSEEventEncodedOnceForEveryStream(t *testing.T) {
	ts := newTestServer(t, nil)
	pub := ts.connect(t)
	ja := join(t, pub, 1, "chat:enc1", nil)
	jb := join(t, pub, 2, "chat:enc2", nil)
	tlsSrv := httptest.NewTLSServer(ts.Handler())
	t.Cleanup(tlsSrv.Close)
	hc := sseClient(t, nil)
	var one []*sseStream
	for range 3 {
		one = append(one, openSSE(t, hc, eventsURL(ts, "chat:enc1", ""), nil))
	}
	one = append(one, openSSE(t, tlsSrv.Client(), tlsSrv.URL+"/v1/rooms/chat:enc1/events", nil))
	multi := openSSE(t, hc, ts.URL+"/v1/events?room=chat:enc1&room=chat:enc2", nil)
	for _, s := range one {
		s.expect("snapshot")
	}
	multi.expect("snapshot")
	multi.expect("snapshot")

	before := frameEncodes.Load()
	seq := publish(t, pub, "chat:enc1", "x")[0]
	for _, s := range one {
		if ev := s.expect("message"); ev.ID != ja.E+":"+strconv.FormatUint(seq, 10) || jsonOf(t, ev)["data"] != "x" {
			t.Fatalf("one-room stream: %q %s", ev.ID, ev.Data)
		}
	}
	ev := multi.expect("message")
	if want := "chat:enc1=" + ja.E + ":" + strconv.FormatUint(seq, 10) + ",chat:enc2=" + jb.E + ":0"; ev.ID != want || jsonOf(t, ev)["data"] != "x" {
		t.Fatalf("multi-room stream: %q %s, want id %q", ev.ID, ev.Data, want)
	}
	if n := frameEncodes.Load() - before; n != 1 {
		t.Fatalf("the event was encoded %d times for 5 streams", n)
	}
}

// Parked streams count towards the memory release after a park storm, as
// parked sessions do; a stream that ends is no longer counted.
func TestSSEParkedStreamsReleaseMemory(t *testing.T) {
	if !netio.CanPark {
		t.Skip("streams park on Linux only")
	}
	ts := newTestServer(t, nil)
	ts.release.SetPolicy(3, 50*time.Millisecond, time.Minute, math.Inf(1))
	var conns []net.Conn
	for range 3 {
		c, _ := openRawSSE(t, ts.URL, "/v1/rooms/chat:rel/events", "")
		conns = append(conns, c)
	}
	checkFor(t, 5*time.Second, func() error {
		if n := ts.releases.Load(); n != 1 {
			return fmt.Errorf("%d releases", n)
		}
		return nil
	})
	conns[0].Close()
	checkFor(t, 5*time.Second, func() error {
		if n := ts.parkedSSE.Load(); n != 2 {
			return fmt.Errorf("%d streams counted parked, want 2", n)
		}
		return nil
	})
}

// An HTTP/1.0 client gets the stream unchunked, ended by the connection's
// close: the same events, with no chunk framing between them.
func TestSSERawHTTP10IsNotChunked(t *testing.T) {
	ts := newTestServer(t, nil)
	pub := ts.connect(t)
	j := join(t, pub, 1, "chat:h10", nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /v1/rooms/chat:h10/events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(c)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 0 {
		t.Fatalf("%s, transfer encoding %v", resp.Status, resp.TransferEncoding)
	}
	s := &sseStream{t: t, resp: resp, rd: bufio.NewReader(resp.Body), cancel: func() {}}
	if ev := s.next(); ev.Retry != "3000" {
		t.Fatalf("first item %+v, want retry: 3000", ev)
	}
	s.expect("snapshot")
	seqs := publish(t, pub, "chat:h10", "a", "b")
	for i, seq := range seqs {
		ev := s.expect("message", "presence")
		if want := j.E + ":" + strconv.FormatUint(seq, 10); ev.ID != want || jsonOf(t, ev)["data"] != []string{"a", "b"}[i] {
			t.Fatalf("event %d: %q %s, want id %q", i, ev.ID, ev.Data, want)
		}
	}
	ts.closeObservers(context.Background())
	s.expectBye(protocol.CodeShutdown)
}
