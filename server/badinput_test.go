package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/wsframe"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extPayload is a msgpack fixext1 value (type 5), which payloads may not use.
var extPayload = []byte{0xd4, 0x05, 0x01}

// TestBadInput sends one kind of bad input per case on a fresh connection
// and checks the documented answer: an err frame with a code (after which
// the connection still works), or bye plus close 4000+code. A bystander in
// the same room must not notice anything.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, func(c *Config, r *room.Config) {
		c.MaxMessageBytes = 8 << 10
		c.MaxRoomsPerConn = 3
		c.FrameRate = 40
		c.FrameBurst = 40
		c.FloodStrikes = 10
		c.MaxFramesPerMessage = 30
		c.HelloTimeout = 300 * time.Millisecond
		r.Namespaces = map[string]room.Namespace{
			"small":  {MaxMessageBytes: 1 << 10, StateMaxKeys: 2, StateMaxValueBytes: 512, MaxPresenceBytes: 64},
			"nopres": {NoPresence: true},
			"ro":     {APIPublishOnly: true},
		}
	})
	bystander := ts.connect(t)
	join(t, bystander, 1, "small:x", nil)

	type step func(t *testing.T, c *client.Conn)
	raw := func(mt int, b []byte) step {
		return func(t *testing.T, c *client.Conn) {
			if err := c.SendRaw(mt, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	frames := func(fs ...any) step {
		return func(t *testing.T, c *client.Conn) { send(t, c, fs...) }
	}
	joined := func(room string) step {
		return func(t *testing.T, c *client.Conn) { join(t, c, 100, room, nil) }
	}
	big := strings.Repeat("x", 2<<10)

	cases := []struct {
		name    string
		noHello bool
		setup   []step
		send    step
		errCode *protocol.Code // err frame expected
		byeCode *protocol.Code // bye + close expected
	}{
		{name: "text message before hello", noHello: true, send: raw(websocket.TextMessage, []byte(`{"t":"hello"}`)), byeCode: code(protocol.CodeBadProtocol)},
		{name: "text message after hello", send: raw(websocket.TextMessage, []byte("hi")), byeCode: code(protocol.CodeBadProtocol)},
		{name: "garbage bytes", send: raw(websocket.BinaryMessage, []byte{0xc1, 0xc1, 0xc1}), byeCode: code(protocol.CodeBadProtocol)},
		{name: "truncated msgpack", send: raw(websocket.BinaryMessage, mp(t, client.M{"t": "pub", "r": "small:x", "d": "abcdef"})[:9]), byeCode: code(protocol.CodeBadProtocol)},
		{name: "op before hello", noHello: true, send: frames(client.M{"t": "join", "id": 1, "r": "small:x"}), byeCode: code(protocol.CodeBadProtocol)},
		{name: "no hello in time", noHello: true, send: func(*testing.T, *client.Conn) {}, byeCode: code(protocol.CodeBadProtocol)},
		{name: "hello with unsupported version", noHello: true, send: frames(client.M{"t": "hello", "v": 2}), byeCode: code(protocol.CodeUnsupported)},
		{name: "oversize message", send: raw(websocket.BinaryMessage, mp(t, client.M{"t": "pub", "r": "small:x", "d": strings.Repeat("y", 9<<10)})), byeCode: code(protocol.CodeTooLarge)},
		{name: "too many frames in one message", send: frames(repeat(client.M{"t": "leave", "r": "small:x"}, 31)...), byeCode: code(protocol.CodeTooLarge)},
		{name: "frame is not a map", send: frames([]any{"pub", "small:x"}), errCode: code(protocol.CodeBadRequest)},
		{name: "unknown type", send: frames(client.M{"t": "shout", "id": 1}), errCode: code(protocol.CodeUnknownType)},
		{name: "missing t", send: frames(client.M{"id": 1, "r": "small:x"}), errCode: code(protocol.CodeBadRequest)},
		{name: "id of the wrong type", send: frames(client.M{"t": "join", "id": "one", "r": "small:x"}), errCode: code(protocol.CodeBadRequest)},
		{name: "room of the wrong type", send: frames(client.M{"t": "join", "id": 1, "r": 42}), errCode: code(protocol.CodeBadRequest)},
		{name: "eph of the wrong type", setup: []step{joined("small:x")}, send: frames(client.M{"t": "pub", "id": 1, "r": "small:x", "d": 1, "eph": "yes"}), errCode: code(protocol.CodeBadRequest)},
		{name: "missing r", send: frames(client.M{"t": "join", "id": 1}), errCode: code(protocol.CodeBadRequest)},
		{name: "invalid room name", send: frames(client.M{"t": "join", "id": 1, "r": "no spaces!"}), errCode: code(protocol.CodeInvalidRoom)},
		{name: "room name too long", send: frames(client.M{"t": "join", "id": 1, "r": strings.Repeat("a", 129)}), errCode: code(protocol.CodeInvalidRoom)},
		{name: "pub before join", send: frames(client.M{"t": "pub", "id": 1, "r": "small:x", "d": 1}), errCode: code(protocol.CodeNotJoined)},
		{name: "set before join", send: frames(client.M{"t": "set", "id": 1, "r": "small:x", "k": "a", "d": 1}), errCode: code(protocol.CodeNotJoined)},
		{name: "double join", setup: []step{joined("small:x")}, send: frames(client.M{"t": "join", "id": 1, "r": "small:x"}), errCode: code(protocol.CodeAlreadyJoined)},
		{name: "pub without d", setup: []step{joined("small:x")}, send: frames(client.M{"t": "pub", "id": 1, "r": "small:x"}), errCode: code(protocol.CodeBadRequest)},
		{name: "oversize payload", setup: []step{joined("small:x")}, send: frames(client.M{"t": "pub", "id": 1, "r": "small:x", "d": big}), errCode: code(protocol.CodeTooLarge)},
		{name: "payload with ext type", setup: []step{joined("small:x")}, send: raw(websocket.BinaryMessage, append(mp(t, client.M{"t": "pub", "id": 1, "r": "small:x"})[:0:0], pubWithRawD(t, extPayload)...)), errCode: code(protocol.CodeBadRequest)},
		{name: "idempotency key too long", setup: []step{joined("small:x")}, send: frames(client.M{"t": "pub", "id": 1, "r": "small:x", "d": 1, "key": strings.Repeat("k", 65)}), errCode: code(protocol.CodeTooLarge)},
		{name: "oversize state value", setup: []step{joined("small:x")}, send: frames(client.M{"t": "set", "id": 1, "r": "small:x", "k": "a", "d": strings.Repeat("v", 600)}), errCode: code(protocol.CodeTooLarge)},
		{name: "state key too long", setup: []step{joined("small:x")}, send: frames(client.M{"t": "set", "id": 1, "r": "small:x", "k": strings.Repeat("k", 257), "d": 1}), errCode: code(protocol.CodeTooLarge)},
		{name: "set without k", setup: []step{joined("small:x")}, send: frames(client.M{"t": "set", "id": 1, "r": "small:x", "d": 1}), errCode: code(protocol.CodeBadRequest)},
		{name: "too many state keys", setup: []step{joined("small:keys"), frames(client.M{"t": "set", "r": "small:keys", "k": "a", "d": 1}, client.M{"t": "set", "r": "small:keys", "k": "b", "d": 1})},
			send: frames(client.M{"t": "set", "id": 1, "r": "small:keys", "k": "c", "d": 1}), errCode: code(protocol.CodeLimit)},
		{name: "oversize presence", send: frames(client.M{"t": "join", "id": 1, "r": "small:pp", "p": big}), errCode: code(protocol.CodeTooLarge)},
		{name: "too many rooms", setup: []step{joined("a:1"), joined("a:2"), joined("a:3")}, send: frames(client.M{"t": "join", "id": 1, "r": "a:4"}), errCode: code(protocol.CodeLimit)},
		{name: "presence in a namespace without it", setup: []step{joined("nopres:x")}, send: frames(client.M{"t": "pres", "id": 1, "r": "nopres:x", "d": 1}), errCode: code(protocol.CodeForbidden)},
		{name: "client pub where only the API may", setup: []step{joined("ro:x")}, send: frames(client.M{"t": "pub", "id": 1, "r": "ro:x", "d": 1}), errCode: code(protocol.CodeForbidden)},
		{name: "second hello", send: frames(client.M{"t": "hello", "id": 1, "v": 1}), errCode: code(protocol.CodeBadRequest)},
		{name: "h of the wrong type", send: frames(client.M{"t": "join", "id": 1, "r": "small:h", "h": "many"}), errCode: code(protocol.CodeBadRequest)},
		{name: "flood beyond the rate limit", setup: []step{joined("small:flood")}, send: func(t *testing.T, c *client.Conn) {
			// 44 frames against a burst of 40: a few are refused, too few
			// to count as flooding.
			send(t, c, repeat(client.M{"t": "pub", "r": "small:flood", "d": 1, "eph": true}, 29)...)
			send(t, c, repeat(client.M{"t": "pub", "r": "small:flood", "d": 1, "eph": true}, 15)...)
		}, errCode: code(protocol.CodeRateLimited)},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			if !tc.noHello {
				if err := c.Hello(testCtx(t), "", nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range tc.setup {
				s(t, c)
			}
			tc.send(t, c)
			if tc.byeCode != nil {
				expectBye(t, c, *tc.byeCode)
				return
			}
			f := expect(t, c, protocol.TypeErr, protocol.TypeOK, protocol.TypeMsg, protocol.TypeState, protocol.TypePres, protocol.TypeEph)
			if f.Code != *tc.errCode {
				t.Fatalf("err code %d (%s), want %d", f.Code, f.Msg, *tc.errCode)
			}
			if f.Msg == "" {
				t.Fatal("err without a message")
			}
			// The connection still works: a leave of a room it is not in
			// gets its own answer.
			send(t, c, client.M{"t": "leave", "id": 777, "r": "alive:check"})
			ctx := testCtx(t)
			for {
				g, err := c.Next(ctx)
				if err != nil {
					t.Fatalf("connection unusable after the error: %v", err)
				}
				if g.T == protocol.TypeErr && g.ID == 777 && g.Code == protocol.CodeNotJoined {
					break
				}
				if g.T == protocol.TypeErr && g.ID == 777 && g.Code == protocol.CodeRateLimited {
					time.Sleep(50 * time.Millisecond) // let the bucket refill
					send(t, c, client.M{"t": "leave", "id": 777, "r": "alive:check"})
				}
			}
		})
	}
	// The bystander noticed nothing, and its connection still works.
	send(t, bystander, client.M{"t": "pub", "id": 2, "r": "small:x", "d": "still here"})
	expect(t, bystander, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
}

func TestFloodingGetsByeRateLimited(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.FrameRate = 20
		c.FrameBurst = 20
		c.FloodStrikes = 10
	})
	c := ts.connect(t)
	join(t, c, 1, "chat:flood", nil)
	for i := 0; i < 5; i++ {
		if err := c.Send(repeat(client.M{"t": "pub", "r": "chat:flood", "d": 1, "eph": true}, 20)...); err != nil {
			break // the server may already have closed
		}
	}
	expectBye(t, c, protocol.CodeRateLimited)
}

func code(c protocol.Code) *protocol.Code { return &c }

func repeat(f any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// pubWithRawD encodes a pub frame whose d is the given raw msgpack bytes.
func pubWithRawD(t *testing.T, d []byte) []byte {
	var b bytes.Buffer
	b.WriteByte(0x84) // fixmap of 4
	for _, kv := range []struct {
		k string
		v any
	}{{"t", "pub"}, {"id", 1}, {"r", "small:x"}} {
		b.Write(mp(t, kv.k))
		b.Write(mp(t, kv.v))
	}
	b.Write(mp(t, "d"))
	b.Write(d)
	return b.Bytes()
}

// A burst of refused frames followed by part of another frame gets every
// answer while the reader waits for the rest, which never comes: answers
// are never held back for frames still to come.
func TestRefusalsAnsweredBeforeAPartialFrame(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.connect(t)
	const n = 100
	var burst []byte
	for i := range n {
		// "r" of the wrong type
		burst = wsframe.AppendMasked(burst, wsframe.OpBinary, mp(t, client.M{"t": "join", "id": i + 1, "r": 42}), wsframe.NewMaskKey())
	}
	last := mp(t, client.M{"t": "join", "id": n + 1, "r": "x"})
	burst = wsframe.AppendMasked(burst, wsframe.OpBinary, last, wsframe.NewMaskKey())
	burst = burst[:len(burst)-(len(last)+1)/2] // the header and the first half
	if _, err := c.WS().NetConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for i := range n {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("answer %d of %d: %v", i+1, n, err)
		}
		if f.T != protocol.TypeErr || f.Code != protocol.CodeBadRequest {
			t.Fatalf("answer %d: %s code %d", i+1, f.T, f.Code)
		}
	}
}
