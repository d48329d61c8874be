//go:build linux

package netio

import (
	"bufio"
	"crypto/tls"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/internal/wsframe"
)

// tlsPair is a TLS connection over loopback TCP, both ends handshaken; the
// client's writes can be corked.
func tlsPair(t *testing.T) (srv, cli *tls.Conn, cork *testutil.CorkConn) {
	t.Helper()
	kp, pool := testutil.Cert(t)
	cliTCP, srvTCP := tcpPair(t)
	cork = &testutil.CorkConn{Conn: cliTCP}
	srv = tls.Server(srvTCP, &tls.Config{Certificates: []tls.Certificate{kp}})
	cli = tls.Client(cork, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	t.Cleanup(func() { _ = srv.Close(); _ = cli.Close() })
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, cli, cork
}

// What DrainTLS relies on in crypto/tls and the poller: a read with a
// passed deadline hands over what sits in whole records, never reads the
// socket, and leaves no lasting error.
func TestDrainTLSTakesOnlyWhatTLSHolds(t *testing.T) {
	srv, cli, cork := tlsPair(t)
	var wg sync.WaitGroup
	var c Conn
	c.Open(srv, nil, true, TurnConfig{WG: &wg, Timeout: time.Second})
	if c.TLS != srv || c.Under == nil || c.Raw != nil || c.FD <= 0 {
		t.Fatalf("Open over TLS: TLS %v, Under %v, Raw %v, FD %d", c.TLS != nil, c.Under != nil, c.Raw != nil, c.FD)
	}
	send := func(parts ...string) {
		t.Helper()
		for _, p := range parts {
			if _, err := cli.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	readByte := func(br *bufio.Reader, want byte) {
		t.Helper()
		_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := br.ReadByte()
		if err != nil || b != want {
			t.Fatalf("read %q, %v; want %q", b, err, want)
		}
	}
	drain := func(br *bufio.Reader, want bool) {
		t.Helper()
		more, err := DrainTLS(srv, br, time.Time{})
		if more != want || err != nil {
			t.Fatalf("DrainTLS: %v, %v; want %v", more, err, want)
		}
	}
	br := bufio.NewReaderSize(srv, 4096)
	// Two records in one segment: a read takes both off the socket and
	// returns the first one's bytes; the second is crypto/tls's.
	_ = cork.SetCorked(true)
	send("a", "b")
	if err := cork.SetCorked(false); err != nil {
		t.Fatal(err)
	}
	readByte(br, 'a')
	if Readable(c.Under) {
		t.Fatal("the socket still holds bytes: the records came apart")
	}
	drain(br, true)
	readByte(br, 'b')
	drain(br, false) // nothing held
	// Bytes on the socket stay there: only a real read takes them, and the
	// drains' timeouts did not stick.
	send("c")
	deadline := time.Now().Add(5 * time.Second)
	for !Readable(c.Under) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	drain(br, false)
	if !Readable(c.Under) {
		t.Fatal("DrainTLS read the socket")
	}
	readByte(br, 'c')
	// The peer's close_notify is a real read's to find, too.
	_ = cli.Close()
	for !Readable(c.Under) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	drain(br, false)
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after close_notify: %v, want EOF", err)
	}
}

// Take consumes a client's complete ping or pong and nothing else.
func TestControlTake(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	masked := func(op wsframe.Opcode, data string) []byte {
		return wsframe.AppendMasked(nil, op, []byte(data), key)
	}
	var in []byte
	in = append(in, masked(wsframe.OpPing, "hi")...)
	in = append(in, masked(wsframe.OpPong, "")...)
	in = append(in, masked(wsframe.OpBinary, "msg")...)
	br := bufio.NewReader(&oneRead{b: in})
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	var c Control
	if c.Take(br); c.Op != wsframe.OpPing || string(c.Data()) != "hi" {
		t.Fatalf("took %v %q, want the ping", c.Op, c.Data())
	}
	if c.Take(br); c.Op != wsframe.OpPong {
		t.Fatalf("took %v, want the pong", c.Op)
	}
	if c.Take(br); c.Op != 0 || br.Buffered() != len(masked(wsframe.OpBinary, "msg")) {
		t.Fatalf("took %v from a message (%d left)", c.Op, br.Buffered())
	}
	// A ping not all buffered is left.
	part := masked(wsframe.OpPing, "partial")
	br = bufio.NewReader(&oneRead{b: part[:len(part)-1]})
	_, _ = br.Peek(1)
	if c.Take(br); c.Op != 0 || br.Buffered() != len(part)-1 {
		t.Fatalf("took %v from a partial ping", c.Op)
	}
}

// oneRead returns its bytes in one read, then EOF.
type oneRead struct{ b []byte }

func (r *oneRead) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// sendRoom says a socket has room until its peer stops reading and it
// fills, and that it is empty again once the peer has read.
func TestSendRoom(t *testing.T) {
	srv, cli, _ := tlsPair(t)
	var fd int
	rc := RawConn(srv.NetConn())
	_ = rc.Control(func(f uintptr) { fd = int(f) })
	if empty, room := sendRoom(uintptr(fd)); !empty || !room {
		t.Fatalf("a fresh socket: empty %v, room %v", empty, room)
	}
	// Fill it: non-blocking writes on the raw socket until it is full.
	chunk := make([]byte, 16<<10)
	var dw directWrite
	sent := 0
	for {
		n, err := dw.do(rc, nil, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		sent += n
	}
	if empty, room := sendRoom(uintptr(fd)); empty || room {
		t.Fatalf("%d bytes unread: empty %v, room %v", sent, empty, room)
	}
	// The peer reads it all (raw bytes, not records: only the socket matters).
	raw := cli.NetConn()
	buf := make([]byte, 64<<10)
	for got := 0; got < sent; {
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := raw.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	deadline := time.Now().Add(5 * time.Second)
	for empty, _ := sendRoom(uintptr(fd)); !empty; empty, _ = sendRoom(uintptr(fd)) {
		if time.Now().After(deadline) {
			t.Fatal("not writable again once read")
		}
		time.Sleep(time.Millisecond)
	}
}
