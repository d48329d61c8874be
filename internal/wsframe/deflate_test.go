package wsframe

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
	"testing"
)

// compressed builds a compressed message's first frame as a client (masked)
// or a server writes it: z is a message body (sync tail stripped).
func compressed(masked, fin bool, op Opcode, z []byte) []byte {
	f := frame(masked, fin, op, z)
	f[0] |= rsv1Bit
	return f
}

// body is p as one compressed message body.
func body(p []byte) []byte { return TrimSyncTail(Deflate(p)) }

func readDeflate(t *testing.T, limit int, wire ...[]byte) (Opcode, []byte, error) {
	t.Helper()
	r := &Reader{Masked: true, Deflate: true}
	br := bufio.NewReader(bytes.NewReader(bytes.Join(wire, nil)))
	var buf bytes.Buffer
	op, err := r.ReadMessage(br, &buf, limit)
	return op, buf.Bytes(), err
}

func TestReadCompressed(t *testing.T) {
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 200))
	for _, p := range [][]byte{nil, []byte("hi"), text} {
		op, got, err := readDeflate(t, 0, compressed(true, true, OpBinary, body(p)))
		if err != nil || op != OpBinary || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: op %d, %d bytes, %v", len(p), op, len(got), err)
		}
	}
	// Fragmented: RSV1 on the first frame only, a ping between.
	z := body(text)
	op, got, err := readDeflate(t, 0,
		compressed(true, false, OpText, z[:10]),
		frame(true, true, OpPing, nil),
		frame(true, false, OpContinuation, z[10:20]),
		frame(true, true, OpContinuation, z[20:]),
		compressed(true, true, OpBinary, body([]byte("next"))))
	if err != nil || op != OpText || !bytes.Equal(got, text) {
		t.Fatalf("fragments: op %d, %d bytes, %v", op, len(got), err)
	}
	// A body written by another deflater (stdlib, its own level), with a
	// plain message after it on the same connection.
	var zb bytes.Buffer
	fw, _ := flate.NewWriter(&zb, flate.BestSpeed)
	_, _ = fw.Write(text)
	_ = fw.Flush()
	r := &Reader{Masked: true, Deflate: true}
	br := bufio.NewReader(bytes.NewReader(append(compressed(true, true, OpBinary, TrimSyncTail(zb.Bytes())), frame(true, true, OpBinary, []byte("plain"))...)))
	var buf bytes.Buffer
	if _, err := r.ReadMessage(br, &buf, 0); err != nil || !bytes.Equal(buf.Bytes(), text) {
		t.Fatalf("BestSpeed body: %v", err)
	}
	buf.Reset()
	if _, err := r.ReadMessage(br, &buf, 0); err != nil || buf.String() != "plain" {
		t.Fatalf("plain after compressed: %q %v", buf.String(), err)
	}
}

// A message that inflates past the limit is refused (ErrInflatedTooLarge,
// which is ErrTooLarge) after being read to its end; the next message reads.
// So is one whose compressed form alone passes the limit.
func TestReadCompressedTooLarge(t *testing.T) {
	bomb := body(make([]byte, 10<<20)) // 10 MiB of zeros in about 10 KiB
	if len(bomb) > 16<<10 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	r := &Reader{Masked: true, Deflate: true}
	wire := bytes.Join([][]byte{
		compressed(true, true, OpBinary, bomb),
		compressed(true, true, OpBinary, body([]byte("next"))),
		compressed(true, false, OpBinary, bytes.Repeat([]byte{1}, 40<<10)),
		frame(true, true, OpContinuation, bytes.Repeat([]byte{1}, 40<<10)),
		compressed(true, true, OpBinary, body([]byte("last"))),
	}, nil)
	br := bufio.NewReader(bytes.NewReader(wire))
	var buf bytes.Buffer
	const limit = 64 << 10
	if _, err := r.ReadMessage(br, &buf, limit); !errors.Is(err, ErrInflatedTooLarge) || !errors.Is(err, ErrTooLarge) || buf.Len() != 0 {
		t.Fatalf("bomb: %v, kept %d bytes", err, buf.Len())
	}
	if _, err := r.ReadMessage(br, &buf, limit); err != nil || buf.String() != "next" {
		t.Fatalf("after the bomb: %q %v", buf.String(), err)
	}
	buf.Reset()
	if _, err := r.ReadMessage(br, &buf, limit); !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInflatedTooLarge) || buf.Len() != 0 {
		t.Fatalf("compressed form over the limit: %v, kept %d bytes", err, buf.Len())
	}
	if _, err := r.ReadMessage(br, &buf, limit); err != nil || buf.String() != "last" {
		t.Fatalf("after it: %q %v", buf.String(), err)
	}
}

func TestReadCompressedProtocolErrors(t *testing.T) {
	z := body([]byte("hello hello hello"))
	for name, tc := range map[string]struct {
		deflate bool
		wire    []byte
	}{
		"RSV1 not negotiated":  {false, compressed(true, true, OpBinary, z)},
		"RSV2":                 {true, func() []byte { f := frame(true, true, OpBinary, z); f[0] |= 0x20; return f }()},
		"RSV1 and RSV3":        {true, func() []byte { f := compressed(true, true, OpBinary, z); f[0] |= 0x10; return f }()},
		"compressed ping":      {true, compressed(true, true, OpPing, nil)},
		"compressed close":     {true, compressed(true, true, OpClose, CloseBody(CloseNormal, ""))},
		"RSV1 on continuation": {true, append(compressed(true, false, OpBinary, z[:3]), compressed(true, true, OpContinuation, z[3:])...)},
		"not DEFLATE":          {true, compressed(true, true, OpBinary, []byte{0xff, 0xff, 0xff, 0xff, 0xff})},
		"reserved block type":  {true, compressed(true, true, OpBinary, []byte{0x07})},
		"stored length check":  {true, compressed(true, true, OpBinary, []byte{0x00, 0x05, 0x00, 0x00, 0x00, 'a'})},
	} {
		r := &Reader{Masked: true, Deflate: tc.deflate}
		var buf bytes.Buffer
		_, err := r.ReadMessage(bufio.NewReader(bytes.NewReader(tc.wire)), &buf, 1<<20)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a protocol error", name, err)
		}
	}
}

// Pieces from Deflate and AppendStored make one message body, as a server
// builds a batch of shared events; the header carries RSV1.
func TestDeflatePieces(t *testing.T) {
	a := []byte(strings.Repeat("shared event ", 50))
	b := []byte("small")
	c := bytes.Repeat([]byte{7}, 70000) // two stored blocks
	z := func(p []byte) func(*Body) { return func(b *Body) { b.Deflated(Deflate(p)) } }
	s := func(p []byte) func(*Body) { return func(b *Body) { b.Stored(p) } }
	for _, tc := range []struct {
		name   string
		pieces []func(*Body)
		want   [][]byte
	}{
		{"compressed, stored", []func(*Body){z(a), s(b)}, [][]byte{a, b}},
		{"stored, compressed", []func(*Body){s(c), z(a)}, [][]byte{c, a}},
		{"compressed twice", []func(*Body){z(a), z(b)}, [][]byte{a, b}},
		{"stored twice", []func(*Body){s(b), s(c), s(nil)}, [][]byte{b, c}},
		{"empty", []func(*Body){z(nil), s(nil)}, nil},
		{"nothing", nil, nil},
	} {
		var bd Body
		for _, f := range tc.pieces {
			f(&bd)
		}
		body := bd.Done()
		want := bytes.Join(tc.want, nil)
		wire := append(AppendDeflatedHeader(nil, OpBinary, len(body)), body...)
		if wire[0] != 0xC2 {
			t.Fatalf("%s: first byte %#x", tc.name, wire[0])
		}
		r := &Reader{Deflate: true}
		var buf bytes.Buffer
		if _, err := r.ReadMessage(bufio.NewReader(bytes.NewReader(wire)), &buf, 0); err != nil || !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("%s: %d bytes, %v", tc.name, buf.Len(), err)
		}
	}
	var buf bytes.Buffer
	if err := Inflate(&buf, TrimSyncTail(Deflate(a)), len(a)-1); !errors.Is(err, ErrInflatedTooLarge) || buf.Len() != 0 {
		t.Fatalf("Inflate over its limit: %v", err)
	}
	if err := Inflate(&buf, TrimSyncTail(Deflate(a)), len(a)); err != nil || !bytes.Equal(buf.Bytes(), a) {
		t.Fatalf("Inflate at its limit: %v", err)
	}
	if got := AppendDeflatedHeader([]byte("x"), OpBinary, 300); !bytes.Equal(got, []byte{'x', 0xC2, 126, 1, 44}) {
		t.Fatalf("header after other bytes: % x", got)
	}
	if _, err := io.ReadAll(flate.NewReader(bytes.NewReader(Deflate(nil)))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Deflate must not end the stream: %v", err)
	}
}

// chatFrame is 360 bytes of chat text that does not repeat itself, about
// a msg frame of roomd bench --size 300 --payload-text.
var chatFrame = []byte("Hey, are we still meeting at the cafe tomorrow? I think the new place on the corner has better coffee, and they open at seven so we could get there early. Did you see the message from Sam about the deadline? It moved to Friday, which gives us a little more time to finish the slides. Bring the charger you borrowed last week, mine died again on the train home.")

// BenchmarkDeflate: the compression of one event, done once for all the
// connections it goes to.
func BenchmarkDeflate(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(chatFrame)))
	for b.Loop() {
		Deflate(chatFrame)
	}
}

// BenchmarkInflate: a client's (or the server's, for a compressed publish)
// inflation of one message.
func BenchmarkInflate(b *testing.B) {
	z := TrimSyncTail(Deflate(chatFrame))
	var buf bytes.Buffer
	b.ReportAllocs()
	b.SetBytes(int64(len(chatFrame)))
	for b.Loop() {
		buf.Reset()
		if err := Inflate(&buf, z, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
