//go:build linux

package netio

import (
	"bytes"
	"io"
	"testing"
)

// A direct write puts a header and a body on the socket in one call, small
// or large, and allocates nothing doing it (checked without -race).
func TestDirectWrite(t *testing.T) {
	c, peer := tcpPair(t)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	hdr, small, large := []byte{0x82, 3}, []byte("abc"), bytes.Repeat([]byte{'x'}, 2*smallWrite)
	var d directWrite
	var want []byte
	for _, tc := range []struct{ h, b []byte }{{hdr, small}, {hdr, large}, {nil, large}, {hdr, nil}, {nil, nil}} {
		n, err := d.do(rc, tc.h, tc.b)
		if err != nil || n != len(tc.h)+len(tc.b) {
			t.Fatalf("wrote %d of %d: %v", n, len(tc.h)+len(tc.b), err)
		}
		want = append(append(want, tc.h...), tc.b...)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	if raceEnabled {
		return // the race detector allocates on its own account
	}
	for _, b := range [][]byte{small, large} {
		if n := testing.AllocsPerRun(100, func() { _, _ = d.do(rc, hdr, b) }); n != 0 {
			t.Errorf("a write of %d bytes allocates %.0f times", len(b), n)
		}
	}
}
