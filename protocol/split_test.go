package protocol

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

func TestSplit(t *testing.T) {
	hello := mp(t, map[string]any{"t": "hello", "v": 1})
	join := mp(t, map[string]any{"t": "join", "id": 1, "r": "a"})
	pub := mp(t, map[string]any{"t": "pub", "r": "a", "d": map[string]any{"deep": []any{1, "x", nil, 2.5}}})

	tests := []struct {
		name      string
		msg       []byte
		maxFrames int
		want      [][]byte // on success
		wantErr   error    // ErrMalformed, or nil
		wantCode  Code     // when the error is a *Error
	}{
		{name: "one frame", msg: hello, want: [][]byte{hello}},
		{name: "three frames", msg: cat(hello, join, pub), want: [][]byte{hello, join, pub}},
		{name: "scalars split too", msg: hx(t, "01 c0 a1 78"), want: [][]byte{{0x01}, {0xc0}, hx(t, "a1 78")}},
		{name: "at the frame limit", msg: cat(join, join, join), maxFrames: 3, want: [][]byte{join, join, join}},
		{name: "zero means no limit", msg: bytes.Repeat(hx(t, "80"), 1000), maxFrames: 0},
		{name: "empty", msg: nil, wantErr: ErrMalformed},
		{name: "empty non-nil", msg: []byte{}, wantErr: ErrMalformed},
		{name: "truncated map", msg: hello[:len(hello)-1], wantErr: ErrMalformed},
		{name: "truncated str header", msg: hx(t, "81 a1 74 d9"), wantErr: ErrMalformed},
		{name: "truncated array32 count", msg: hx(t, "dd 00 00"), wantErr: ErrMalformed},
		{name: "array32 claims 4G elements", msg: hx(t, "dd ff ff ff ff 01"), wantErr: ErrMalformed},
		{name: "str32 claims 4 GiB", msg: hx(t, "db ff ff ff ff 61"), wantErr: ErrMalformed},
		{name: "bin16 short", msg: hx(t, "c5 00 05 01 02"), wantErr: ErrMalformed},
		{name: "ext8 short", msg: hx(t, "c7 02 05 01"), wantErr: ErrMalformed},
		{name: "fixext16 short", msg: hx(t, "d8 01 00 00"), wantErr: ErrMalformed},
		{name: "never-used byte c1", msg: hx(t, "c1"), wantErr: ErrMalformed},
		{name: "garbage inside a map", msg: hx(t, "81 a1 74 c1"), wantErr: ErrMalformed},
		{name: "trailing partial value", msg: cat(hello, join, hx(t, "82 a1 74")), wantErr: ErrMalformed},
		{name: "trailing partial int", msg: cat(hello, hx(t, "cd 01")), wantErr: ErrMalformed},
		{name: "too many frames", msg: cat(join, join, join, join), maxFrames: 3, wantCode: CodeTooLarge},
		{name: "too many beats trailing garbage", msg: cat(join, join, hx(t, "c1")), maxFrames: 2, wantCode: CodeTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Split(nil, tc.msg, tc.maxFrames)
			switch {
			case tc.wantCode != 0:
				wantCode(t, err, tc.wantCode)
				if errors.Is(err, ErrMalformed) {
					t.Fatalf("too_large must not also be ErrMalformed")
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Split: %v", err)
			}
			if !bytes.Equal(bytes.Join(got, nil), tc.msg) {
				t.Fatalf("frames do not cover the message exactly")
			}
			if tc.want == nil {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d frames, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("frame %d = % x, want % x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSplitAppendsAndAliases(t *testing.T) {
	a := mp(t, map[string]any{"t": "ping"})
	msg := cat(a, a)
	dst := make([][]byte, 1, 8)
	dst[0] = []byte("keep")
	got, err := Split(dst, msg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0]) != "keep" {
		t.Fatalf("Split must append to dst: got %q", got)
	}
	msg[0] ^= 0xff // the frames alias msg
	if got[1][0] != msg[0] {
		t.Fatalf("frames must alias the message")
	}
}

// A message of nothing but nested arrays must split without deep recursion
// and without allocating.
func TestSplitDeepNesting(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 1<<20), 0xc0)
	got, err := Split(nil, deep, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("Split(deep) = %d frames, %v", len(got), err)
	}
	if _, err := Split(nil, deep[:len(deep)-1], 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Split(deep, truncated) = %v, want ErrMalformed", err)
	}
	if grew := stackGrowth(func() { _, _ = Split(nil, deep, 0) }); grew > 1<<20 {
		t.Fatalf("Split of %d nested arrays grew the stack by %d bytes", len(deep)-1, grew)
	}
	dst := make([][]byte, 0, 4)
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := Split(dst[:0], deep, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Split allocates %v times", allocs)
	}
}

// DecodeFrame, too, walks a deeply nested payload without recursion; the
// payload is then refused by ValidatePayload.
func TestDecodeFrameDeepNesting(t *testing.T) {
	frame := cat(hx(t, "83 a1 74 a3 70 75 62 a1 72 a1 61 a1 64"), bytes.Repeat([]byte{0x91}, 1<<20), hx(t, "c0"))
	var f Frame
	var err error
	grew := stackGrowth(func() { err = DecodeFrame(frame, &f) })
	if err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	if grew > 1<<20 {
		t.Fatalf("DecodeFrame grew the stack by %d bytes", grew)
	}
	wantCode(t, ValidatePayload(f.D), CodeBadRequest)
}

// stackGrowth runs fn on a fresh goroutine and reports how much the
// process's stack memory grew while it ran.
func stackGrowth(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan uint64)
	go func() {
		fn()
		runtime.ReadMemStats(&after)
		done <- after.StackInuse
	}()
	inuse := <-done
	if inuse < before.StackInuse {
		return 0
	}
	return inuse - before.StackInuse
}
