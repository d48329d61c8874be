package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/netio"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// rawWS is a WebSocket client that sees the server's frames as they are on
// the wire, RSV1 included, and sends its own, compressed or not.
type rawWS struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// dialRaw opens a connection offering extensions (none when empty).
func dialRaw(t testing.TB, ts *testServer, extensions string) *rawWS {
	t.Helper()
	host := strings.TrimPrefix(ts.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	h := http.Header{}
	if extensions != "" {
		h.Set("Sec-WebSocket-Extensions", extensions)
	}
	br, resp, err := wsframe.ClientHandshake(conn, host, "/v1/ws", protocol.Subprotocol, h)
	if err != nil {
		t.Fatal(err)
	}
	return &rawWS{t: t, conn: conn, br: br, resp: resp}
}

// sendMsg sends payload as one message; compressed, with RSV1 and payload
// deflated.
func (c *rawWS) sendMsg(compressed bool, payload []byte) {
	c.t.Helper()
	if compressed {
		payload = wsframe.TrimSyncTail(wsframe.Deflate(payload))
	}
	f := wsframe.AppendMasked(nil, wsframe.OpBinary, payload, wsframe.NewMaskKey())
	if compressed {
		f[0] |= 0x40
	}
	if _, err := c.conn.Write(f); err != nil {
		c.t.Fatal(err)
	}
}

// send sends frames as one message.
func (c *rawWS) send(compressed bool, frames ...any) {
	c.t.Helper()
	var msg []byte
	for _, f := range frames {
		b, err := msgpack.Marshal(f)
		if err != nil {
			c.t.Fatal(err)
		}
		msg = append(msg, b...)
	}
	c.sendMsg(compressed, msg)
}

// errClosed carries the close code the server sent.
type errClosed struct{ code int }

func (e errClosed) Error() string { return "closed" }

// next reads the next data message: its frames, and whether it came
// compressed (RSV1). Pings are skipped.
func (c *rawWS) next() ([]protocol.Frame, bool, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, false, err
		}
		n := int(h[1] & 0x7F)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return nil, false, err
			}
			n = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return nil, false, err
			}
			n = int(binary.BigEndian.Uint64(ext[:]))
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return nil, false, err
		}
		if h[0]&0x80 == 0 || h[0]&0x30 != 0 {
			c.t.Fatalf("server frame %#x: fragmented or RSV2/RSV3", h[0])
		}
		compressed := h[0]&0x40 != 0
		switch op := wsframe.Opcode(h[0] & 0x0F); {
		case op == wsframe.OpClose:
			if compressed {
				c.t.Fatalf("compressed close frame")
			}
			code := wsframe.CloseNoStatus
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			return nil, false, errClosed{code}
		case op.IsControl():
			if compressed {
				c.t.Fatalf("compressed control frame %d", op)
			}
			continue
		}
		if compressed {
			var buf bytes.Buffer
			if err := wsframe.Inflate(&buf, p, 1<<20); err != nil {
				c.t.Fatalf("inflating %d bytes: %v", len(p), err)
			}
			p = buf.Bytes()
		}
		split, err := protocol.Split(nil, p, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		frames := make([]protocol.Frame, len(split))
		for i, fb := range split {
			if err := protocol.DecodeFrame(fb, &frames[i]); err != nil {
				c.t.Fatal(err)
			}
		}
		return frames, compressed, nil
	}
}

// expect reads messages until a frame of type typ, and returns it and
// whether its message came compressed. Other frames are skipped.
func (c *rawWS) expect(typ string) (protocol.Frame, bool) {
	c.t.Helper()
	for {
		frames, compressed, err := c.next()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		for _, f := range frames {
			if f.T == typ {
				return f, compressed
			}
		}
	}
}

// hello says hello and joins rooms, uncompressed.
func (c *rawWS) hello(rooms ...string) {
	c.t.Helper()
	c.send(false, client.M{"t": "hello", "v": 1})
	c.expect(protocol.TypeWelcome)
	for i, r := range rooms {
		c.send(false, client.M{"t": "join", "id": i + 1, "r": r})
		c.expect(protocol.TypeJoined)
	}
}

// gorillaDeflate connects gorilla's client offering permessage-deflate,
// says hello and joins room.
func gorillaDeflate(t testing.TB, ts *testServer, room string) *client.Conn {
	t.Helper()
	c, _, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{Compression: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	join(t, c, 1, room, nil)
	return c
}

// deflateServer serves with compression on in namespace z only, frames of
// 100 bytes and more compressed.
func deflateServer(t testing.TB, edit func(*Config)) *testServer {
	return newTestServer(t, func(c *Config, rc *room.Config) {
		c.Deflate, c.DeflateMinBytes = true, 100
		rc.Namespaces = map[string]room.Namespace{"z": {Compression: true}}
		if edit != nil {
			edit(c)
		}
	})
}

func TestDeflateNegotiation(t *testing.T) {
	on := deflateServer(t, nil)
	off := newTestServer(t, nil)
	for _, tc := range []struct {
		name   string
		ts     *testServer
		offer  string
		accept bool
	}{
		{"browser's offer", on, "permessage-deflate; client_max_window_bits", true},
		{"plain offer", on, "permessage-deflate", true},
		{"second offer acceptable", on, "permessage-deflate; server_max_window_bits=9, permessage-deflate", true},
		{"no offer", on, "", false},
		{"small server window", on, "permessage-deflate; server_max_window_bits=9", false},
		{"unknown parameter", on, "permessage-deflate; level=9", false},
		{"malformed", on, "permessage-deflate;;", false},
		{"other extension", on, "x-webkit-deflate-frame", false},
		{"server without compression", off, "permessage-deflate; client_max_window_bits", false},
	} {
		c := dialRaw(t, tc.ts, tc.offer)
		got := c.resp.Header.Get("Sec-WebSocket-Extensions")
		if tc.accept && got != wsframe.DeflateResponse || !tc.accept && got != "" {
			t.Errorf("%s: answered %q", tc.name, got)
		}
		// The connection works either way.
		c.hello()
	}
	// gorilla's client, as another implementation, accepts the answer.
	c, resp, err := client.Dial(testCtx(t), on.URL, &client.DialOptions{Compression: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.Header.Get("Sec-WebSocket-Extensions") != wsframe.DeflateResponse {
		t.Fatalf("gorilla's offer: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
}

// One room in a namespace with compression, one without: a connection that
// negotiated deflate gets the first's large events compressed (once for
// all), its small ones plain, and the second's plain; a connection without
// deflate in the same room gets everything plain.
func TestDeflateDelivery(t *testing.T) {
	var m countDeflate
	ts := deflateServer(t, func(c *Config) { c.Metrics = &m })
	z := dialRaw(t, ts, "permessage-deflate; client_max_window_bits")
	z.hello("z:room", "p:room")
	plain := dialRaw(t, ts, "")
	plain.hello("z:room")
	gz := gorillaDeflate(t, ts, "z:room")

	text := strings.Repeat("chat text compresses well, chat text compresses well. ", 8)
	publish := func(rm, data string) {
		t.Helper()
		if _, err := ts.Router().Publish(testCtx(t), room.PublishRequest{Room: rm, Data: protocol.MustEncode(data), FromAPI: true}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(c *rawWS, who, rm, data string, wantCompressed bool) {
		t.Helper()
		f, compressed := c.expect(protocol.TypeMsg)
		if f.R != rm || value(t, f.D) != data {
			t.Fatalf("%s: msg in %s %v, want %s %q", who, f.R, value(t, f.D), rm, data)
		}
		if compressed != wantCompressed {
			t.Fatalf("%s: %s msg of %d bytes came compressed: %v", who, rm, len(data), compressed)
		}
	}
	publish("z:room", text)
	check(z, "deflate", "z:room", text, true)
	check(plain, "plain", "z:room", text, false)
	if f := expect(t, gz, protocol.TypeMsg, protocol.TypePres); value(t, f.D) != text {
		t.Fatalf("gorilla: %v", value(t, f.D))
	}
	publish("z:room", "hi")
	check(z, "deflate", "z:room", "hi", false)
	check(plain, "plain", "z:room", "hi", false)
	publish("p:room", text)
	check(z, "deflate", "p:room", text, false)
	if n, raw, wire := m.messages.Load(), m.raw.Load(), m.wire.Load(); n != 2 || wire >= raw/3 {
		t.Fatalf("%d messages compressed, %d bytes to %d", n, raw, wire)
	}
}

// A message of several frames, some compressed and some not, is one
// compressed body: the large events shared, the small ones stored.
func TestDeflateBatch(t *testing.T) {
	ts := deflateServer(t, nil)
	z := dialRaw(t, ts, "permessage-deflate")
	z.hello("z:room")
	text := strings.Repeat("a large event in a batch ", 10)
	// Published while z does not read, with a small receive buffer: the
	// socket fills, frames queue, and go out several to a message.
	_ = z.conn.(*net.TCPConn).SetReadBuffer(4096)
	const n = 2000
	for i := range n {
		data := text
		if i%2 == 1 {
			data = "small"
		}
		if _, err := ts.Router().Publish(testCtx(t), room.PublishRequest{Room: "z:room", Data: protocol.MustEncode(data), FromAPI: true}); err != nil {
			t.Fatal(err)
		}
	}
	got, batches := 0, 0
	for got < n {
		frames, compressed, err := z.next()
		if err != nil {
			t.Fatal(err)
		}
		if len(frames) > 1 {
			batches++
		}
		for _, f := range frames {
			if f.T != protocol.TypeMsg {
				continue
			}
			want := text
			if got%2 == 1 {
				want = "small"
			}
			if value(t, f.D) != want {
				t.Fatalf("msg %d: %v", got, value(t, f.D))
			}
			if len(frames) > 1 && !compressed {
				t.Fatalf("a batch with large events came plain")
			}
			got++
		}
	}
	if batches == 0 {
		t.Fatal("every message came alone: nothing batched")
	}
}

// A compressed publish is inflated and published; a decompression bomb is
// refused with bye 103 (close 4103) and counted; RSV1 without the
// extension is a protocol error (close 1002).
func TestDeflateInbound(t *testing.T) {
	var m countDeflate
	ts := deflateServer(t, func(c *Config) { c.Metrics = &m; c.MaxMessageBytes = 64 << 10 })
	z := dialRaw(t, ts, "permessage-deflate")
	z.hello("z:room")
	plain := dialRaw(t, ts, "")
	plain.hello("z:room")
	text := strings.Repeat("a compressed publish ", 20)
	z.send(true, client.M{"t": "pub", "id": 9, "r": "z:room", "d": text})
	if f, _ := z.expect(protocol.TypeOK); f.ID != 9 {
		t.Fatalf("ok for %d", f.ID)
	}
	if f, compressed := plain.expect(protocol.TypeMsg); value(t, f.D) != text || compressed {
		t.Fatalf("plain member got %v (compressed %v)", value(t, f.D), compressed)
	}

	// gorilla's client compresses its publishes too.
	gz := gorillaDeflate(t, ts, "z:room")
	send(t, gz, client.M{"t": "pub", "id": 2, "r": "z:room", "d": text + "!"})
	expect(t, gz, protocol.TypeOK, protocol.TypeMsg)
	if f, _ := plain.expect(protocol.TypeMsg); value(t, f.D) != text+"!" {
		t.Fatalf("from gorilla: %v", value(t, f.D))
	}

	// 8 MiB of zeros, which compress to well under the 64 KiB bound.
	if n := len(wsframe.Deflate(make([]byte, 8<<20))); n > 32<<10 {
		t.Fatalf("the bomb is %d bytes compressed", n)
	}
	z.sendMsg(true, make([]byte, 8<<20))
	for {
		_, _, err := z.next()
		var ce errClosed
		if errors.As(err, &ce) {
			if ce.code != protocol.CodeTooLarge.CloseCode() {
				t.Fatalf("bomb: close %d", ce.code)
			}
			break
		}
		if err != nil {
			t.Fatalf("bomb: %v", err)
		}
	}
	if m.inflateTooLarge.Load() != 1 {
		t.Fatalf("bomb counted %d times", m.inflateTooLarge.Load())
	}
	// The other members were not harmed.
	if _, err := ts.Router().Publish(testCtx(t), room.PublishRequest{Room: "z:room", Data: protocol.MustEncode("after"), FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	if f, _ := plain.expect(protocol.TypeMsg); value(t, f.D) != "after" {
		t.Fatalf("after the bomb: %v", value(t, f.D))
	}

	// RSV1 from a connection that did not negotiate it.
	plain.send(true, client.M{"t": "pub", "id": 4, "r": "z:room", "d": text})
	for {
		_, _, err := plain.next()
		var ce errClosed
		if errors.As(err, &ce) {
			if ce.code != wsframe.CloseProtocolError {
				t.Fatalf("RSV1 without deflate: close %d", ce.code)
			}
			break
		}
		if err != nil {
			t.Fatalf("RSV1 without deflate: %v", err)
		}
	}
}

// countDeflate counts the compression measurements.
type countDeflate struct {
	noopMetrics
	messages, raw, wire, inflateTooLarge atomic.Int64
}

func (m *countDeflate) Deflated(raw, wire int) {
	m.messages.Add(1)
	m.raw.Add(int64(raw))
	m.wire.Add(int64(wire))
}

func (m *countDeflate) InflateTooLarge() { m.inflateTooLarge.Add(1) }

// A parked connection that negotiated deflate still gets compressed events,
// and its compressed publishes, which wake it, are inflated by the reader
// each wake-up makes.
func TestDeflateParked(t *testing.T) {
	if !netio.CanPark {
		t.Skip("connections park on Linux only")
	}
	ts := deflateServer(t, func(c *Config) { c.ParkAfter = 30 * time.Millisecond })
	z := dialRaw(t, ts, "permessage-deflate")
	z.hello("z:room")
	text := strings.Repeat("to a parked connection ", 10)
	for i := range 2 {
		waitParked(t, ts, 1)
		if _, err := ts.Router().Publish(testCtx(t), room.PublishRequest{Room: "z:room", Data: protocol.MustEncode(text), FromAPI: true}); err != nil {
			t.Fatal(err)
		}
		if f, compressed := z.expect(protocol.TypeMsg); value(t, f.D) != text || !compressed {
			t.Fatalf("parked: %v (compressed %v)", value(t, f.D), compressed)
		}
		waitParked(t, ts, 1)
		z.send(true, client.M{"t": "pub", "id": 10 + i, "r": "z:room", "d": text})
		if f, _ := z.expect(protocol.TypeOK); f.ID != uint64(10+i) {
			t.Fatalf("ok for %d", f.ID)
		}
	}
}
