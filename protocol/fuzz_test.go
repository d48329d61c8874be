package protocol

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// seedMessages are real messages: every client and server frame alone, and
// batches of them, as a client or the server would send them.
func seedMessages(t testing.TB) [][]byte {
	client, server := clientFrames(t), serverFrames(t)
	seeds := append(append([][]byte{}, client...), server...)
	seeds = append(seeds, bytes.Join(client, nil), bytes.Join(server, nil))
	seeds = append(seeds,
		mp(t, map[string]any{"t": "pub", "r": "a", "d": map[string]any{"deep": []any{[]any{[]any{1}}}}}),
		mp(t, map[string]any{"t": "join", "id": -1, "r": "a", "since": []any{"e", 1}}),
		cat(client[0], hx(t, "82 a1 74")),
		hx(t, "d6 ff 00 00 00 01"),
	)
	return seeds
}

// FuzzSplitDecode runs a message through what the server does with it:
// Split, DecodeFrame on each frame, ValidatePayload on each payload. None of
// it may panic, every error must be ErrMalformed or a *Error, and the
// results must agree with the msgpack library's reading of the same bytes.
func FuzzSplitDecode(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		frames, err := Split(nil, msg, 0)
		ref, refErr := refSplit(msg)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Split error %v, library error %v", err, refErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Split error %v is not ErrMalformed", err)
			}
		} else if len(frames) != len(ref) {
			t.Fatalf("Split found %d values, the library %d", len(frames), len(ref))
		} else {
			for i := range frames {
				if !bytes.Equal(frames[i], ref[i]) {
					t.Fatalf("value %d: % x, library % x", i, frames[i], ref[i])
				}
			}
		}
		if _, err := Split(nil, msg, 2); err != nil && !errors.Is(err, ErrMalformed) {
			checkError(t, err, CodeTooLarge)
		}

		// The whole message as one frame and as one payload, to reach the
		// decoders' handling of truncated and trailing bytes.
		checkFrame(t, msg)
		checkPayload(t, msg)
		for _, fr := range frames {
			checkFrame(t, fr)
		}
	})
}

// checkFrame decodes b as a frame and checks the result.
func checkFrame(t *testing.T, b []byte) {
	var f Frame
	if err := DecodeFrame(b, &f); err != nil {
		checkError(t, err, CodeBadRequest)
		return
	}
	if f.T == "" {
		t.Fatalf("frame decoded without a type")
	}
	// The raw fields are exactly what the library finds under their keys
	// (the last of duplicated keys wins in both).
	m, err := refFrameRaws(b)
	if err != nil {
		t.Fatalf("DecodeFrame accepted % x, the library says %v", b, err)
	}
	raws := map[string]Raw{"d": f.D, "p": f.P, "log": f.Log, "pres": f.Pres, "st": f.St,
		"join": f.Join, "leave": f.Leave, "upd": f.Upd}
	for k, r := range raws {
		if !bytes.Equal(r, m[k]) {
			t.Fatalf("key %q: % x, library % x", k, []byte(r), []byte(m[k]))
		}
		checkPayload(t, r)
	}
}

// checkPayload validates p and compares with a reference validator.
func checkPayload(t *testing.T, p []byte) {
	err := ValidatePayload(p)
	if err != nil {
		checkError(t, err, CodeBadRequest)
	}
	if want := refValidate(p); (err == nil) != want {
		t.Fatalf("ValidatePayload(% x) = %v, reference says valid=%v", p, err, want)
	}
}

func checkError(t *testing.T, err error, code Code) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error %v (%T) is not a *Error with code %v", err, err, code)
	}
}

// refSplit splits msg with the msgpack library's Skip.
func refSplit(msg []byte) ([][]byte, error) {
	if len(msg) == 0 {
		return nil, ErrMalformed
	}
	r := bytes.NewReader(msg)
	d := msgpack.NewDecoder(r)
	var out [][]byte
	start := 0
	for r.Len() > 0 {
		if err := d.Skip(); err != nil {
			return nil, err
		}
		end := len(msg) - r.Len()
		out = append(out, msg[start:end])
		start = end
	}
	return out, nil
}

// refFrameRaws reads a frame's values, still encoded, with the library.
func refFrameRaws(b []byte) (map[string][]byte, error) {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte, n)
	for i := 0; i < n; i++ {
		k, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeRaw()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// refValidate is ValidatePayload written the obvious way, on the library.
func refValidate(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	r := bytes.NewReader(p)
	d := msgpack.NewDecoder(r)
	var walk func(depth int) bool
	walk = func(depth int) bool {
		c, err := d.PeekCode()
		if err != nil {
			return false
		}
		switch {
		case refIsMap(c) || refIsArray(c):
			if depth == MaxNesting {
				return false
			}
			var n int
			if refIsMap(c) {
				n, err = d.DecodeMapLen()
				n *= 2
			} else {
				n, err = d.DecodeArrayLen()
			}
			if err != nil {
				return false
			}
			for i := 0; i < n; i++ {
				if !walk(depth + 1) {
					return false
				}
			}
			return true
		case c >= 0xd4 && c <= 0xd8, c >= 0xc7 && c <= 0xc9:
			return false // ext
		default:
			return d.Skip() == nil
		}
	}
	return walk(0) && r.Len() == 0
}

func refIsMap(c byte) bool   { return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf }
func refIsArray(c byte) bool { return c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd }
