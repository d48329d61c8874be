//go:build linux

package netio

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/wsframe"
)

// WaitFrame takes a whole pong off the socket and leaves anything else,
// a pong in part included, to the frame reader; with nothing there it
// waits for bytes, up to the read deadline.
func TestWaitFrame(t *testing.T) {
	client, srv := tcpPair(t)
	rc, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	key := [4]byte{1, 2, 3, 4}
	pong := wsframe.AppendMasked(nil, wsframe.OpPong, []byte("p"), key)
	msg := wsframe.AppendMasked(nil, wsframe.OpBinary, []byte("message"), key)

	// Nothing yet: it waits until the deadline.
	_ = srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if took, err := WaitFrame(rc); took || err == nil {
		t.Fatalf("empty socket: pong %v, err %v; want a deadline error", took, err)
	}
	_ = srv.SetReadDeadline(time.Time{})

	// A pong then a message: the pong is taken, the message left whole.
	if _, err := client.Write(append(append([]byte{}, pong...), msg...)); err != nil {
		t.Fatal(err)
	}
	if took, err := WaitFrame(rc); !took || err != nil {
		t.Fatalf("pong first: pong %v, err %v", took, err)
	}
	if took, err := WaitFrame(rc); took || err != nil {
		t.Fatalf("message next: pong %v, err %v", took, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %x (%v), want the message %x", got, err, msg)
	}

	// Part of a pong: left for the reader, not taken.
	if _, err := client.Write(pong[:3]); err != nil {
		t.Fatal(err)
	}
	if took, err := WaitFrame(rc); took || err != nil {
		t.Fatalf("partial pong: pong %v, err %v", took, err)
	}
	got = make([]byte, 3)
	if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, pong[:3]) {
		t.Fatalf("read %x (%v), want the partial pong %x", got, err, pong[:3])
	}
}
