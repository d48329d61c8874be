package wsframe

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// frame builds one frame as a client (masked) or a server writes it.
func frame(masked, fin bool, op Opcode, payload []byte) []byte {
	var b []byte
	if masked {
		b = AppendMasked(nil, op, payload, NewMaskKey())
	} else {
		b = append(AppendHeader(nil, op, len(payload)), payload...)
	}
	if !fin {
		b[0] &^= finBit
	}
	return b
}

func read(t *testing.T, masked bool, limit int, wire ...[]byte) (op Opcode, msg []byte, ctl []string, err error) {
	t.Helper()
	var got []string
	r := &Reader{Masked: masked,
		OnPing: func(p []byte) { got = append(got, "ping:"+string(p)) },
		OnPong: func(p []byte) { got = append(got, "pong:"+string(p)) },
	}
	br := bufio.NewReader(bytes.NewReader(bytes.Join(wire, nil)))
	var buf bytes.Buffer
	op, err = r.ReadMessage(br, &buf, limit)
	return op, buf.Bytes(), got, err
}

func TestReadMessage(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 7000) // 8-byte length
	mid := bytes.Repeat([]byte("x"), 300)           // 2-byte length
	for _, masked := range []bool{true, false} {
		for _, payload := range [][]byte{nil, []byte("hi"), mid, big} {
			op, got, _, err := read(t, masked, 0, frame(masked, true, OpBinary, payload))
			if err != nil || op != OpBinary || !bytes.Equal(got, payload) {
				t.Fatalf("masked %v, %d bytes: op %d, %d bytes, %v", masked, len(payload), op, len(got), err)
			}
		}
	}
	// Fragments, with control frames between them.
	op, got, ctl, err := read(t, true, 0,
		frame(true, false, OpText, []byte("he")),
		frame(true, true, OpPing, []byte("p1")),
		frame(true, false, OpContinuation, []byte("ll")),
		frame(true, true, OpPong, []byte("p2")),
		frame(true, true, OpContinuation, []byte("o")))
	if err != nil || op != OpText || string(got) != "hello" || strings.Join(ctl, ",") != "ping:p1,pong:p2" {
		t.Fatalf("fragments: op %d %q %v, control %v", op, got, err, ctl)
	}
}

func TestReadMessageTooLarge(t *testing.T) {
	r := &Reader{Masked: true}
	wire := bytes.Join([][]byte{
		frame(true, false, OpBinary, bytes.Repeat([]byte("a"), 60)),
		frame(true, true, OpContinuation, bytes.Repeat([]byte("b"), 60)),
		frame(true, true, OpBinary, []byte("next")),
	}, nil)
	br := bufio.NewReader(bytes.NewReader(wire))
	var buf bytes.Buffer
	if _, err := r.ReadMessage(br, &buf, 100); !errors.Is(err, ErrTooLarge) || buf.Len() != 0 {
		t.Fatalf("err %v, kept %d bytes", err, buf.Len())
	}
	// The rest of the oversized message was skipped: the next one reads.
	if op, err := r.ReadMessage(br, &buf, 100); err != nil || op != OpBinary || buf.String() != "next" {
		t.Fatalf("next: %d %q %v", op, buf.String(), err)
	}
}

func TestReadMessageClose(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		code int
	}{
		{nil, CloseNoStatus},
		{CloseBody(CloseNormal, "bye"), CloseNormal},
		{CloseBody(4002, ""), 4002},
	} {
		_, _, _, err := read(t, true, 0, frame(true, true, OpClose, tc.body))
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Fatalf("close %v: %v", tc.body, err)
		}
	}
}

func TestReadMessageProtocolErrors(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 126)
	for name, wire := range map[string][]byte{
		"unmasked from a client":  frame(false, true, OpBinary, []byte("x")),
		"reserved bits":           func() []byte { f := frame(true, true, OpBinary, nil); f[0] |= 0x40; return f }(),
		"unknown opcode":          frame(true, true, Opcode(3), nil),
		"fragmented control":      frame(true, false, OpPing, nil),
		"control over 125 bytes":  frame(true, true, OpPing, long),
		"continuation first":      frame(true, true, OpContinuation, []byte("x")),
		"message inside message":  append(frame(true, false, OpBinary, []byte("x")), frame(true, true, OpBinary, []byte("y"))...),
		"close of one byte":       frame(true, true, OpClose, []byte{3}),
		"close code not allowed":  frame(true, true, OpClose, CloseBody(1005, "")[:0:0]),
		"close code 999":          frame(true, true, OpClose, []byte{3, 231}),
		"close reason not utf-8":  frame(true, true, OpClose, []byte{3, 232, 0xff}),
		"length with the top bit": {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
	} {
		if name == "close code not allowed" {
			wire = frame(true, true, OpClose, []byte{0x03, 0xED}) // 1005
		}
		_, _, _, err := read(t, true, 0, wire)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a protocol error", name, err)
		}
	}
	// A server's frame must not be masked.
	_, _, _, err := read(t, false, 0, frame(true, true, OpBinary, []byte("x")))
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Errorf("masked from a server: %v", err)
	}
}

func TestReadMessageTruncated(t *testing.T) {
	f := frame(true, true, OpBinary, []byte("hello"))
	for i := 1; i < len(f); i++ {
		if _, _, _, err := read(t, true, 0, f[:i]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
	if _, _, _, err := read(t, true, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("nothing: %v", err)
	}
}

func TestMaskedPongLen(t *testing.T) {
	pong := frame(true, true, OpPong, []byte("abc"))
	if n := MaskedPongLen(pong); n != len(pong) {
		t.Fatalf("pong: %d", n)
	}
	if n := MaskedPongLen(pong[:len(pong)-1]); n != 0 {
		t.Fatalf("incomplete pong: %d", n)
	}
	if n := MaskedPongLen(frame(true, true, OpPing, nil)); n != 0 {
		t.Fatalf("ping taken for a pong")
	}
}

func TestMaskedControl(t *testing.T) {
	ping := frame(true, true, OpPing, []byte("hi"))
	if op, n := MaskedControl(ping); op != OpPing || n != len(ping) {
		t.Fatalf("ping: %v, %d", op, n)
	}
	for name, b := range map[string][]byte{
		"unmasked ping": frame(true, false, OpPing, nil),
		"not final":     frame(false, true, OpPong, nil),
		"binary":        frame(true, true, OpBinary, []byte("x")),
		"incomplete":    ping[:len(ping)-1],
	} {
		if op, n := MaskedControl(b); op != 0 || n != 0 {
			t.Errorf("%s: %v, %d; want none", name, op, n)
		}
	}
}

// FuzzReadMessage: whatever the bytes, the reader returns (no panic, no
// hang), keeps at most limit bytes, inflated or not, and a message it
// accepts is what a writer of the same frames would have sent. With
// deflate, compressed messages are read too (the seeds hold some, and a
// bomb).
func FuzzReadMessage(f *testing.F) {
	f.Add(frame(true, true, OpBinary, []byte("hello")), true, false)
	f.Add(append(frame(true, false, OpText, []byte("he")), frame(true, true, OpContinuation, []byte("llo"))...), true, false)
	f.Add(frame(true, true, OpClose, CloseBody(CloseNormal, "bye")), true, false)
	f.Add(frame(true, true, OpPing, []byte("p")), true, false)
	f.Add(frame(false, true, OpBinary, bytes.Repeat([]byte("x"), 300)), false, false)
	f.Add([]byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, false, false)
	z := body([]byte(strings.Repeat("compressible text ", 20)))
	f.Add(compressed(true, true, OpBinary, z), true, true)
	f.Add(compressed(false, true, OpBinary, z), false, true)
	f.Add(append(compressed(true, false, OpBinary, z[:5]), frame(true, true, OpContinuation, z[5:])...), true, true)
	f.Add(compressed(true, true, OpBinary, body(make([]byte, 1<<16))), true, true)
	f.Add(compressed(true, true, OpPing, nil), true, true)
	f.Fuzz(func(t *testing.T, wire []byte, masked, deflate bool) {
		const limit = 1 << 10
		r := &Reader{Masked: masked, Deflate: deflate, OnPing: func([]byte) {}, OnPong: func([]byte) {}}
		br := bufio.NewReader(bytes.NewReader(wire))
		var buf bytes.Buffer
		for range 8 {
			buf.Reset()
			op, err := r.ReadMessage(br, &buf, limit)
			if buf.Len() > limit {
				t.Fatalf("kept %d bytes over the limit", buf.Len())
			}
			if err == nil && op != OpText && op != OpBinary {
				t.Fatalf("message of opcode %d", op)
			}
			if err != nil && !errors.Is(err, ErrTooLarge) {
				return
			}
		}
	})
}

func TestAppendHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{0xFFFF, []byte{0x82, 126, 0xFF, 0xFF}},
		{0x10000, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := AppendHeader(nil, OpBinary, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("%d: % x, want % x", tc.n, got, tc.want)
		}
	}
	if got := AppendControl(nil, OpPing, nil); !bytes.Equal(got, []byte{0x89, 0}) {
		t.Errorf("ping: % x", got)
	}
}

// AppendMasked: the frame reads back as its payload, and the payload given
// is left unmasked.
func TestAppendMasked(t *testing.T) {
	payload := []byte("a client's message, masked on the wire")
	f := AppendMasked([]byte("x"), OpBinary, payload, [4]byte{9, 8, 7, 6})
	if string(payload) != "a client's message, masked on the wire" {
		t.Fatalf("payload changed: %q", payload)
	}
	if f[0] != 'x' || bytes.Contains(f, payload) {
		t.Fatalf("frame %q: dst not kept, or payload not masked", f)
	}
	op, msg, _, err := read(t, true, 0, f[1:])
	if err != nil || op != OpBinary || string(msg) != string(payload) {
		t.Fatalf("read back: %d %q %v", op, msg, err)
	}
}

func TestWholeMessage(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 7000) // 8-byte length
	mid := bytes.Repeat([]byte("x"), 300)           // 2-byte length
	for _, masked := range []bool{true, false} {
		for _, payload := range [][]byte{nil, []byte("hi"), mid, big} {
			f := frame(masked, true, OpBinary, payload)
			for cut := 0; cut < len(f); cut++ {
				if WholeMessage(f[:cut]) {
					t.Fatalf("masked %v, %d bytes: %d of %d bytes taken for a whole message", masked, len(payload), cut, len(f))
				}
			}
			if !WholeMessage(f) || !WholeMessage(append(f, 0x82)) {
				t.Fatalf("masked %v, %d bytes: a whole frame not seen", masked, len(payload))
			}
		}
	}
	if WholeMessage(frame(true, false, OpBinary, []byte("he"))) {
		t.Fatal("a first fragment taken for a whole message")
	}
	huge := []byte{0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, 5}
	if WholeMessage(huge) {
		t.Fatal("a length of 2^64-1 taken for a whole message")
	}
}
