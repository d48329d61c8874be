package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

func TestHelloWelcome(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	w := c.Welcome
	if w.V != 1 || len(w.C) != connIDLen || w.N != "test-node" || w.Ping != 25 {
		t.Fatalf("welcome = %+v", w)
	}
	if ts.Connections() != 1 {
		t.Fatalf("connections = %d", ts.Connections())
	}
}

func TestSubprotocol(t *testing.T) {
	ts := newTestServer(t, nil)
	_, resp, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{Subprotocols: []string{"other.v9"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("other subprotocol: err %v, resp %v; want HTTP 400", err, resp)
	}
	c, resp, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{Subprotocols: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = resp
	c2, resp, err := client.Dial(testCtx(t), ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != protocol.Subprotocol {
		t.Fatalf("selected subprotocol %q", got)
	}
}

func TestPublishReachesEveryMember(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.connect(t), ts.connect(t)
	ja := join(t, a, 1, "chat:x", nil)
	join(t, b, 1, "chat:x", nil)
	if ja.S != 0 || ja.E == "" || ja.Reset != true {
		t.Fatalf("first joined = %+v", ja)
	}
	send(t, a, client.M{"t": "pub", "id": 7, "r": "chat:x", "d": "hello"})
	for _, c := range []*client.Conn{a, b} {
		m := expect(t, c, protocol.TypeMsg, protocol.TypePres)
		if m.S != 1 || m.R != "chat:x" || value(t, m.D) != "hello" || m.C != a.Welcome.C || m.TS == 0 {
			t.Fatalf("msg = %+v", m)
		}
	}
	ok := expect(t, a, protocol.TypeOK)
	if ok.ID != 7 || ok.S != 1 {
		t.Fatalf("ok = %+v", ok)
	}
}

// collect reads msg frames until n arrived and returns their (seq, payload).
func collect(t *testing.T, c *client.Conn, n int) ([]uint64, []string) {
	ctx := testCtx(t)
	var seqs []uint64
	var data []string
	for len(seqs) < n {
		f, err := c.Next(ctx)
		if err != nil {
			t.Errorf("after %d msgs: %v", len(seqs), err)
			return seqs, data
		}
		if f.T == protocol.TypeMsg {
			v, _ := client.Value(f.D)
			seqs = append(seqs, f.S)
			data = append(data, fmt.Sprint(v))
		}
	}
	return seqs, data
}

func TestIdenticalGaplessOrderUnderConcurrentPublishers(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.FrameRate, c.FrameBurst = 10000, 10000
		c.Flushers = 4 // more than the default on a small machine: writes in parallel
	})
	const per = 300
	conns := []*client.Conn{ts.connect(t), ts.connect(t), ts.connect(t)}
	for _, c := range conns {
		join(t, c, 1, "chat:order", nil)
	}
	seqs := make([][]uint64, 3)
	data := make([][]string, 3)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seqs[i], data[i] = collect(t, c, 2*per)
		}()
	}
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := conns[p].Send(client.M{"t": "pub", "r": "chat:order", "d": fmt.Sprintf("p%d-%d", p, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range conns {
		if len(seqs[i]) != 2*per {
			t.Fatalf("member %d got %d msgs", i, len(seqs[i]))
		}
		for j, s := range seqs[i] {
			if s != uint64(j+1) {
				t.Fatalf("member %d: msg %d has seq %d: gap or reorder", i, j, s)
			}
			if data[i][j] != data[0][j] {
				t.Fatalf("member %d: seq %d is %q, member 0 saw %q", i, s, data[i][j], data[0][j])
			}
		}
	}
	// Each publisher's own messages keep their send order.
	last := map[byte]int{'0': -1, '1': -1}
	for _, d := range data[0] {
		var p, n int
		fmt.Sscanf(d, "p%d-%d", &p, &n)
		if n != last[byte('0'+p)]+1 {
			t.Fatalf("publisher %d: %d after %d", p, n, last[byte('0'+p)])
		}
		last[byte('0'+p)] = n
	}
}

func TestResumeWithSinceReplaysExactlyTheMissedEvents(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.connect(t), ts.connect(t)
	ja := join(t, a, 1, "chat:r", nil)
	join(t, b, 1, "chat:r", nil)
	for i := 1; i <= 3; i++ {
		send(t, b, client.M{"t": "pub", "id": i, "r": "chat:r", "d": i})
		expect(t, b, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	}
	seqs, _ := collect(t, a, 3)
	_ = a.Close()
	send(t, b, client.M{"t": "pub", "id": 10, "r": "chat:r", "d": 4})
	send(t, b, client.M{"t": "set", "id": 11, "r": "chat:r", "k": "color", "d": "red"})
	send(t, b, client.M{"t": "pub", "id": 12, "r": "chat:r", "d": 6})
	for i := 0; i < 3; i++ {
		expect(t, b, protocol.TypeOK, protocol.TypeMsg, protocol.TypeState, protocol.TypePres)
	}

	a2 := ts.connect(t)
	j := join(t, a2, 1, "chat:r", client.M{"since": client.M{"e": ja.E, "s": seqs[2]}})
	if j.Reset || j.S != 6 || !j.St.IsNil() {
		t.Fatalf("joined = reset %v s %d st %v", j.Reset, j.S, j.St)
	}
	log, err := client.Log(j.Log)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 || log[0].S != 4 || log[1].S != 5 || log[1].T != protocol.TypeState || log[1].K != "color" || log[2].S != 6 {
		t.Fatalf("log = %+v", log)
	}
	send(t, b, client.M{"t": "pub", "r": "chat:r", "d": 7})
	m := expect(t, a2, protocol.TypeMsg, protocol.TypePres)
	if m.S != 7 {
		t.Fatalf("live after replay: seq %d, want 7", m.S)
	}
}

func TestResetOnUnknownEpochOrExpiredHistory(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, r *room.Config) { r.Default.HistorySize = 5 })
	a := ts.connect(t)
	ja := join(t, a, 1, "chat:h", nil)
	send(t, a, client.M{"t": "set", "id": 1, "r": "chat:h", "k": "title", "d": "T"})
	expect(t, a, protocol.TypeOK, protocol.TypeState)
	for i := 0; i < 10; i++ {
		send(t, a, client.M{"t": "pub", "r": "chat:h", "d": i})
	}
	collect(t, a, 10)

	for name, since := range map[string]client.M{
		"unknown epoch": {"e": "not-an-epoch", "s": 3},
		"too old":       {"e": ja.E, "s": 2},
		"ahead":         {"e": ja.E, "s": 99},
	} {
		t.Run(name, func(t *testing.T) {
			c := ts.connect(t)
			j := join(t, c, 1, "chat:h", client.M{"since": since, "h": 3})
			if !j.Reset || j.S != 11 {
				t.Fatalf("reset %v seq %d", j.Reset, j.S)
			}
			log, _ := client.Log(j.Log)
			if len(log) != 3 || log[0].S != 9 || log[2].S != 11 {
				t.Fatalf("log = %+v", log)
			}
			st, _ := client.Value(j.St)
			if m, ok := st.(map[string]any); !ok || m["title"] != "T" {
				t.Fatalf("state snapshot = %#v", st)
			}
		})
	}
}

func TestIdempotentResendGetsOriginalSeqAndIsDeliveredOnce(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.connect(t), ts.connect(t)
	join(t, a, 1, "chat:i", nil)
	join(t, b, 1, "chat:i", nil)
	send(t, a, client.M{"t": "pub", "id": 2, "r": "chat:i", "d": "once", "key": "k-1"})
	ok := expect(t, a, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	send(t, a, client.M{"t": "pub", "id": 3, "r": "chat:i", "d": "once", "key": "k-1"})
	ok2 := expect(t, a, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	if ok.S != 1 || ok2.S != 1 || ok2.ID != 3 {
		t.Fatalf("ok %+v, resend ok %+v", ok, ok2)
	}
	send(t, a, client.M{"t": "pub", "r": "chat:i", "d": "marker"})
	_, data := collect(t, b, 2)
	if data[0] != "once" || data[1] != "marker" {
		t.Fatalf("b saw %v: the resend was delivered again", data)
	}
}

func TestPresenceJoinUpdateLeave(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.connect(t), ts.connect(t)
	join(t, a, 1, "chat:p", client.M{"p": client.M{"name": "ann"}})
	jb := join(t, b, 1, "chat:p", client.M{"p": client.M{"name": "bob"}})
	members, _ := client.Members(jb.Pres)
	if len(members) != 2 {
		t.Fatalf("snapshot = %+v", members)
	}
	pj := expect(t, a, protocol.TypePres)
	joinM, _ := client.Members(pj.Join)
	if len(joinM) != 1 || joinM[0].C != b.Welcome.C {
		t.Fatalf("join delta = %+v", pj)
	}
	send(t, b, client.M{"t": "pres", "id": 5, "r": "chat:p", "d": client.M{"name": "bobby"}})
	expect(t, b, protocol.TypeOK, protocol.TypePres) // a pres may restate a, whom b's snapshot showed
	pu := expect(t, a, protocol.TypePres)
	upd, _ := client.Members(pu.Upd)
	if len(upd) != 1 || upd[0].C != b.Welcome.C || value(t, upd[0].D).(map[string]any)["name"] != "bobby" {
		t.Fatalf("upd delta = %+v", pu)
	}
	send(t, b, client.M{"t": "leave", "id": 6, "r": "chat:p"})
	expect(t, b, protocol.TypeOK, protocol.TypePres)
	pl := expect(t, a, protocol.TypePres)
	var left []string
	_ = msgpackUnmarshal(pl.Leave, &left)
	if len(left) != 1 || left[0] != b.Welcome.C {
		t.Fatalf("leave delta = %+v", pl)
	}
}

func TestStateSetDeleteAndSnapshot(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.connect(t), ts.connect(t)
	join(t, a, 1, "board:s", nil)
	join(t, b, 1, "board:s", nil)
	send(t, a, client.M{"t": "set", "id": 2, "r": "board:s", "k": "shape1", "d": client.M{"x": 1}})
	send(t, a, client.M{"t": "set", "id": 3, "r": "board:s", "k": "shape2", "d": "two"})
	send(t, a, client.M{"t": "set", "id": 4, "r": "board:s", "k": "shape2"})
	var got []*protocol.Frame
	for len(got) < 3 {
		got = append(got, expect(t, b, protocol.TypeState, protocol.TypePres))
	}
	if got[0].K != "shape1" || got[0].S != 1 || got[2].K != "shape2" || got[2].D != nil || got[2].S != 3 {
		t.Fatalf("state events = %+v %+v %+v", got[0], got[1], got[2])
	}
	c := ts.connect(t)
	j := join(t, c, 1, "board:s", nil)
	st := value(t, j.St).(map[string]any)
	if len(st) != 1 || st["shape1"].(map[string]any)["x"] != int8(1) {
		t.Fatalf("snapshot = %#v", st)
	}
}

func TestEphemeralDeliveredButNotLogged(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.connect(t), ts.connect(t)
	join(t, a, 1, "board:e", nil)
	join(t, b, 1, "board:e", nil)
	send(t, a, client.M{"t": "pub", "r": "board:e", "d": client.M{"x": 5}, "eph": true})
	send(t, a, client.M{"t": "pub", "id": 9, "r": "board:e", "d": "durable"})
	e := expect(t, b, protocol.TypeEph, protocol.TypePres)
	if e.C != a.Welcome.C {
		t.Fatalf("eph = %+v", e)
	}
	// The sender gets its durable echo and ok, never its own eph.
	for _, want := range []string{protocol.TypeMsg, protocol.TypeOK} {
		if f := expect(t, a, want, protocol.TypePres); f.T == protocol.TypeEph {
			t.Fatal("sender got its own eph")
		}
	}
	c := ts.connect(t)
	j := join(t, c, 1, "board:e", client.M{"h": 10})
	log, _ := client.Log(j.Log)
	if len(log) != 1 || log[0].T != protocol.TypeMsg || j.S != 1 {
		t.Fatalf("history = %+v (seq %d): the ephemeral message was logged", log, j.S)
	}
}

func TestIdleClientGetsPingFrame(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.PingInterval = 150 * time.Millisecond
		c.PongTimeout = time.Second
	})
	c := ts.connect(t)
	f, err := c.Next(testCtx(t))
	if err != nil || f.T != protocol.TypePing {
		t.Fatalf("want {t: ping}, got %+v, %v", f, err)
	}
}

func TestSilentClientIsClosedWithinIntervalPlusTimeout(t *testing.T) {
	const interval, timeout = 200 * time.Millisecond, 300 * time.Millisecond
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.PingInterval = interval
		c.PongTimeout = timeout
	})
	expectClosedWhenSilent(t, ts, ts.connect(t), interval+timeout)
}

// expectClosedWhenSilent makes c stop answering pings (it keeps reading)
// and checks the server closes it with bye no_pong within bound.
func expectClosedWhenSilent(t *testing.T, ts *testServer, c *client.Conn, bound time.Duration) {
	t.Helper()
	c.WS().SetPingHandler(func(string) error { return nil })
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		expectBye(t, c, protocol.CodeNoPong)
	}()
	checkFor(t, 5*time.Second, func() error {
		if n := ts.Connections(); n != 0 {
			return fmt.Errorf("%d connections open", n)
		}
		return nil
	})
	// Bound with slack for a loaded machine; without the liveness check the
	// connection would stay open forever.
	if el := time.Since(start); el > bound+time.Second {
		t.Fatalf("closed after %v, want within %v", el, bound)
	}
	<-done
}

func TestAnsweringClientStaysOpen(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PongTimeout = time.Second
	})
	c := ts.connect(t)
	ctx := testCtx(t)
	pings := 0
	for pings < 6 { // reading answers the control pings
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("closed after %d pings: %v", pings, err)
		}
		if f.T == protocol.TypePing {
			pings++
		}
	}
}

func TestShutdownSendsByeShutdown(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:bye", nil)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	expectBye(t, c, protocol.CodeShutdown)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_, _, err := client.Dial(testCtx(t), ts.URL, nil)
	if err == nil {
		t.Fatal("dial after shutdown succeeded")
	}
}

func TestPresenceSurvivesQuickReconnect(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, r *room.Config) { r.PresenceGrace = 5 * time.Second })
	a, b := ts.connect(t), ts.connect(t)
	join(t, a, 1, "chat:g", client.M{"p": "v1"})
	join(t, b, 1, "chat:g", nil)
	old := a.Welcome.C
	_ = a.Close()
	checkFor(t, 5*time.Second, func() error {
		if ts.Connections() != 1 {
			return fmt.Errorf("old connection still open")
		}
		return nil
	})
	a2 := ts.dial(t)
	if err := a2.Hello(testCtx(t), "", client.M{"c": old}); err != nil {
		t.Fatal(err)
	}
	if a2.Welcome.C != old {
		t.Fatalf("reconnect got id %q, want the previous %q", a2.Welcome.C, old)
	}
	join(t, a2, 1, "chat:g", client.M{"p": "v2"})
	send(t, a2, client.M{"t": "pub", "r": "chat:g", "d": "back"})
	// b sees an update and the message, never a leave or a second join.
	ctx := testCtx(t)
	for {
		f, err := b.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.T == protocol.TypePres && (f.Leave != nil || f.Join != nil) {
			t.Fatalf("presence flickered: %+v", f)
		}
		if f.T == protocol.TypeMsg {
			break
		}
	}
}

var _ = websocket.BinaryMessage

// A client's ping gets its pong, in order with the session's other writes,
// and a client's close gets the close reply with its code.
func TestClientPingAndCloseAreAnswered(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	join(t, c, 1, "chat:ctl", nil)
	pongs := make(chan string, 1)
	c.WS().SetPongHandler(func(data string) error { pongs <- data; return nil })
	if err := c.WS().WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	send(t, c, client.M{"t": "pub", "id": 2, "r": "chat:ctl", "d": "x"})
	expect(t, c, protocol.TypeOK, protocol.TypeMsg)
	select {
	case got := <-pongs: // the pong was written before the ok
		if got != "are you there" {
			t.Fatalf("pong %q", got)
		}
	default:
		t.Fatal("no pong before the ok")
	}
	if err := c.WS().WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, websocket.CloseGoingAway)
	checkFor(t, 5*time.Second, func() error {
		if n := ts.Connections(); n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
}

// A frame RFC 6455 forbids gets close 1002 and the connection ends; the
// connection's neighbours are not touched. A message in fragments, with a
// ping between them, is read whole and the ping answered.
func TestFramingFaultsGetClose1002(t *testing.T) {
	ts := newTestServer(t, nil)
	bystander := ts.connect(t)
	join(t, bystander, 1, "chat:frames", nil)

	masked := func(fin bool, op wsframe.Opcode, p []byte) []byte {
		b := wsframe.AppendMasked(nil, op, p, wsframe.NewMaskKey())
		if !fin {
			b[0] &^= 0x80
		}
		return b
	}
	for name, wire := range map[string][]byte{
		"unmasked":           wsframe.AppendHeader(nil, wsframe.OpBinary, 0),
		"reserved bits":      func() []byte { b := masked(true, wsframe.OpBinary, nil); b[0] |= 0x40; return b }(),
		"unknown opcode":     masked(true, wsframe.Opcode(5), nil),
		"fragmented ping":    masked(false, wsframe.OpPing, nil),
		"continuation first": masked(true, wsframe.OpContinuation, []byte("x")),
	} {
		t.Run(name, func(t *testing.T) {
			c := ts.connect(t)
			if _, err := c.WS().NetConn().Write(wire); err != nil {
				t.Fatal(err)
			}
			expectClose(t, c, websocket.CloseProtocolError)
		})
	}

	// Fragments with a ping between them: one message, and the pong.
	c := ts.connect(t)
	pongs := make(chan string, 1)
	c.WS().SetPongHandler(func(data string) error { pongs <- data; return nil })
	msg := mp(t, client.M{"t": "join", "id": 7, "r": "chat:frag"})
	wire := append(masked(false, wsframe.OpBinary, msg[:3]), masked(true, wsframe.OpPing, []byte("mid"))...)
	wire = append(wire, masked(true, wsframe.OpContinuation, msg[3:])...)
	if _, err := c.WS().NetConn().Write(wire); err != nil {
		t.Fatal(err)
	}
	expect(t, c, protocol.TypeJoined)
	select {
	case got := <-pongs:
		if got != "mid" {
			t.Fatalf("pong %q", got)
		}
	default:
		t.Fatal("no pong before the join answer")
	}
	send(t, bystander, client.M{"t": "pub", "id": 2, "r": "chat:frames", "d": "still here"})
	expect(t, bystander, protocol.TypeOK, protocol.TypeMsg)
}

// expectClose reads until the connection closes, which must be with code
// (no bye required).
func expectClose(t *testing.T, c *client.Conn, code int) {
	t.Helper()
	for {
		_, err := c.Next(testCtx(t))
		if err == nil {
			continue
		}
		ce, ok := err.(*client.CloseError)
		if !ok || ce.Code != code {
			t.Fatalf("want close %d, got %v", code, err)
		}
		return
	}
}

// TestReaderAnswersWhatItReadInOneWrite: a burst of messages read at once
// is answered, once the reader has handled all of it, in one write of one
// WebSocket message, in order, by the reader itself: the answers do not
// go one by one through the flushers, which fan-out needs. They do not
// wait for a message that has only begun to arrive.
func TestReaderAnswersWhatItReadInOneWrite(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	const n = 20
	var burst []byte
	for i := range n {
		f := protocol.MustEncode(client.M{"t": "pub", "id": uint64(i + 1), "r": "not-joined", "d": "x"})
		burst = wsframe.AppendMasked(burst, wsframe.OpBinary, f, wsframe.NewMaskKey())
	}
	// One more message, of which only its first bytes come now: the
	// reader answers the burst before it waits for the rest.
	last := wsframe.AppendMasked(nil, wsframe.OpBinary,
		protocol.MustEncode(client.M{"t": "pub", "id": uint64(n + 1), "r": "not-joined", "d": "x"}), wsframe.NewMaskKey())
	burst = append(burst, last[:5]...)
	flushed := ts.flush.Taken()
	ws := c.WS()
	_ = ws.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := ws.NetConn().Write(burst); err != nil { // n messages in one write
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, msg, err := ws.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage {
		t.Fatalf("read: type %d, %v", typ, err)
	}
	frames, err := protocol.Split(nil, msg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != n {
		t.Fatalf("the first message carried %d answers of %d", len(frames), n)
	}
	for i, fb := range frames {
		var f protocol.Frame
		if err := protocol.DecodeFrame(fb, &f); err != nil || f.T != protocol.TypeErr || f.ID != uint64(i+1) || f.Code != protocol.CodeNotJoined {
			t.Fatalf("answer %d: %+v, %v; want err %d for id %d", i, f, err, protocol.CodeNotJoined, i+1)
		}
	}
	if d := ts.flush.Taken() - flushed; d != 0 {
		t.Fatalf("the flushers took the connection's turn %d times for its answers", d)
	}
	if _, err := ws.NetConn().Write(last[5:]); err != nil {
		t.Fatal(err)
	}
	if f := expect(t, c, protocol.TypeErr); f.ID != n+1 {
		t.Fatalf("the last answer is for id %d, want %d", f.ID, n+1)
	}
}
