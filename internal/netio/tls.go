package netio

import (
	"bufio"
	"errors"
	"net"
	"os"
	"time"

	"github.com/roomd/roomd/internal/wsframe"
)

// Over TLS the socket's bytes are records, not frames: an idle session
// cannot peek at them, so it reads through the tls.Conn (into its frame
// reader's buffer) while it is awake, and parks the TCP socket underneath
// (Conn.FD) once crypto/tls holds nothing more for it. Then the socket's
// readiness is the truth again: a record that arrives wakes the session,
// and a partial record crypto/tls kept waits for the rest, which arrives on
// the socket too.
//
// Writes go through the tls.Conn, blocking with a deadline: crypto/tls
// makes a write timeout permanent, so a non-blocking try that found the
// socket full would break the connection. A flusher writes a small piece
// (tlsWrite) only when the socket has room for it, so that the write takes
// at once; anything else goes to a writer goroutine, lent by Writers so
// that a fan-out does not start one per connection.
//
// Kernel TLS (the record layer handed to the kernel, so that TLS sockets
// take the plain direct-write and peek paths) is not used: it needs the
// kernel's "tls" module, which not every kernel has (docs/OPERATIONS.md).

// past is a read deadline already passed: the poller fails a read with it
// before any system call.
var past = time.Unix(1, 0)

// DrainTLS moves into br (which reads from c, a *tls.Conn) what crypto/tls
// already holds, decrypted or in whole records, without reading the
// socket: the read's deadline has passed, so the poller fails it before
// any system call; crypto/tls keeps neither that timeout nor the partial
// record it may hold. The read deadline is dl afterwards. It reports
// whether br now holds bytes, and any error other than that timeout (the
// connection is then done: a peer's close_notify, a bad record).
func DrainTLS(c net.Conn, br *bufio.Reader, dl time.Time) (bool, error) {
	_ = c.SetReadDeadline(past)
	_, err := br.Peek(1)
	_ = c.SetReadDeadline(dl)
	if br.Buffered() > 0 {
		return true, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return false, err
}

// Control is a client's ping or pong that TakeControl took.
type Control struct {
	Op   wsframe.Opcode // OpPing or OpPong; 0: none was taken
	data [wsframe.MaxControlPayload]byte
	n    int
}

// Data is a ping's payload, unmasked: what the pong must carry.
func (c *Control) Data() []byte { return c.data[:c.n] }

// Take consumes the complete masked ping or pong (what a client
// sends) that br's buffered bytes start with, reading nothing more, into
// c; c.Op is 0 when there is none. Anything else is left for the WebSocket
// reader.
func (c *Control) Take(br *bufio.Reader) {
	c.Op, c.n = 0, 0
	b, _ := br.Peek(min(br.Buffered(), 6+wsframe.MaxControlPayload))
	op, size := wsframe.MaskedControl(b)
	if op == 0 {
		return
	}
	c.Op, c.n = op, copy(c.data[:], b[6:size])
	wsframe.Mask([4]byte(b[2:6]), c.data[:c.n])
	_, _ = br.Discard(size)
}

// tlsFlushMax is the largest piece a flusher writes through a TLS
// connection: small enough that a socket polling writable (a third of its
// send buffer free) takes its record whole, at once.
const tlsFlushMax = 1024

// tlsWrite is a flusher's write through a TLS connection, whose writes
// cannot be non-blocking (a write timeout is permanent in crypto/tls): a
// small piece is written, blocking but at once, when the TCP socket under
// it has room; otherwise nothing is, and the writer goroutine takes the
// piece. Once the socket's send queue was found empty, the next
// tlsCredit pieces skip the question: they add at most a few KiB to a
// queue that held nothing, far below a TCP send buffer. A writer
// goroutine's writes take the credit back (Turn.run). The socket's
// descriptor is asked directly, not through RawConn: a question, unlike a
// write, is harmless on a descriptor that a closed socket left to another
// (the write that follows fails on the closed connection).
type tlsWrite struct {
	fd     int // 0 until the first write; -1: unknown (closed)
	credit int // pieces that may skip the question
}

// tlsCredit is how many pieces of at most tlsFlushMax follow an empty send
// queue unasked.
const tlsCredit = 2

// do writes h and b as one record when the socket has room, and reports
// whether it did.
func (w *tlsWrite) do(t *Turn, h, b []byte) (bool, error) {
	if len(h)+len(b) > tlsFlushMax {
		return false, nil
	}
	if w.fd == 0 {
		w.fd = -1
		_ = t.under.Control(func(fd uintptr) { w.fd = int(fd) })
	}
	switch {
	case w.fd < 0:
		return false, nil // the writer goroutine finds out
	case w.credit > 0:
		w.credit--
	default:
		empty, room := sendRoom(uintptr(w.fd))
		if !room {
			return false, nil
		}
		if empty {
			w.credit = tlsCredit
		}
	}
	t.moveDeadline()
	_, err := t.writeAll(h, b)
	return true, err
}
