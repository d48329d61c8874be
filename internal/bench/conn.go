package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
)

// wsConn is one bench WebSocket connection: a subscriber, a publisher, or
// both (chat). One goroutine reads it; a publisher's own goroutine writes.
type wsConn struct {
	r         *runner
	idx       int
	url       string
	room      *roomState
	tr        *tracker   // nil when this connection does not check messages
	pub       *publisher // nil when it does not publish
	nonReader bool

	ws  *websocket.Conn
	raw net.Conn // floor: the plain TCP connection, when there is no ws
	buf []byte
	fv  frameView

	// Polled connections (poll_linux.go) are read raw, not through gorilla.
	polled bool
	fd     int
	pend   []byte // bytes read but not yet a whole frame
	frag   []byte // a fragmented message being put together
	// permessage-deflate (Config.Deflate): negotiated, the message being
	// read is compressed, and the buffer it is inflated into.
	deflate bool
	zmsg    bool
	zbuf    *bytes.Buffer

	echo    atomic.Int64 // msg frames received by a non-tracking connection
	dead    atomic.Bool  // ended before the run did
	byeCode int          // -1 until a bye arrives
	joined  bool
	welcome bool
	connID  string    // welcome's c
	pv      *presView // joinstorm: this member's view of the room's presence
}

var writeBufPool sync.Pool // gorilla's write buffers, held only while writing

func (r *runner) dialer(nonReader bool) *websocket.Dialer {
	d := &websocket.Dialer{
		Subprotocols:     []string{protocol.Subprotocol},
		HandshakeTimeout: r.cfg.DialTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		WriteBufferPool:  &writeBufPool,
		// Offered when asked for; gorilla then also compresses publishes.
		EnableCompression: r.cfg.Deflate,
		TLSClientConfig:   r.tlsConfig(),
	}
	if nonReader {
		// A non-reader's small receive buffer makes the server's queue for
		// it fill within seconds rather than after the loopback's megabytes
		// of socket buffer.
		nd := &net.Dialer{Timeout: r.cfg.DialTimeout, Control: smallRcvBuf}
		d.NetDialContext = nd.DialContext
	}
	return d
}

// open dials, says hello and joins the connection's room. The reader
// goroutine is started by the caller.
func (c *wsConn) open(ctx context.Context) error {
	c.byeCode = -1
	if !c.polled {
		c.buf = make([]byte, 0, 512)
	}
	d := c.r.wsDialer
	if c.nonReader {
		d = c.r.nrDialer
	}
	ctx, cancel := context.WithTimeout(ctx, c.r.cfg.DialTimeout)
	defer cancel()
	var h http.Header
	ws, resp, err := d.DialContext(ctx, client.WSURL(c.url), h)
	if err != nil {
		c.r.errs.add(dialErrKey(err, resp))
		return err
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if c.r.cfg.Deflate {
		if c.deflate = resp != nil && resp.Header.Get("Sec-WebSocket-Extensions") != ""; !c.deflate {
			c.r.errs.add("deflate:not_negotiated")
		}
	}
	c.ws = ws
	ws.SetReadLimit(64 << 20)
	dl, _ := ctx.Deadline()
	_ = ws.SetWriteDeadline(dl)
	_ = ws.SetReadDeadline(dl)

	hello := []byte{0x83}
	hello = protocol.AppendStr(hello, "t")
	hello = protocol.AppendStr(hello, protocol.TypeHello)
	hello = protocol.AppendStr(hello, "v")
	hello = protocol.AppendUint(hello, protocol.Version)
	hello = protocol.AppendStr(hello, "cli")
	hello = protocol.AppendStr(hello, "roomd-bench")
	if c.r.cfg.Token != "" {
		hello[0]++
		hello = protocol.AppendStr(hello, "tok")
		hello = protocol.AppendStr(hello, c.r.cfg.Token)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, hello); err != nil {
		c.r.errs.add("hello:write")
		c.abort()
		return err
	}
	if err := c.readUntil(func() bool { return c.welcome }); err != nil {
		c.abort()
		return err
	}
	join := []byte{0x83}
	join = protocol.AppendStr(join, "t")
	join = protocol.AppendStr(join, protocol.TypeJoin)
	join = protocol.AppendStr(join, "id")
	join = protocol.AppendUint(join, joinID)
	join = protocol.AppendStr(join, "r")
	join = protocol.AppendStr(join, c.room.name)
	if err := ws.WriteMessage(websocket.BinaryMessage, join); err != nil {
		c.r.errs.add("join:write")
		c.abort()
		return err
	}
	if err := c.readUntil(func() bool { return c.joined }); err != nil {
		c.abort()
		return err
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	return nil
}

// joinID is the request id of the one join a connection sends; publishers'
// pub ids start above it.
const joinID = 1

var errHandshake = errors.New("bench: handshake refused")

func errHandshakeBye(code int) error {
	return fmt.Errorf("%w: bye %s", errHandshake, protocol.Code(code))
}

// readUntil reads and handles messages until done reports true.
func (c *wsConn) readUntil(done func() bool) error {
	if c.polled {
		err := c.readRawUntil(done)
		if err != nil && !errors.Is(err, errHandshake) && !errors.Is(err, errShort) && !errors.Is(err, errBad) {
			if k := readErrKey(err, c.byeCode); k != "" {
				c.r.errs.add("handshake:" + k)
			}
		}
		return err
	}
	for !done() {
		if c.byeCode >= 0 {
			return errHandshakeBye(c.byeCode)
		}
		recv, err := c.readMessage()
		if err != nil {
			if k := readErrKey(err, c.byeCode); k != "" {
				c.r.errs.add("handshake:" + k)
			}
			return err
		}
		if err := c.handle(recv); err != nil {
			return err
		}
	}
	return nil
}

// readMessage reads the next WebSocket message into c.buf and returns the
// time it was read.
func (c *wsConn) readMessage() (int64, error) {
	mt, rd, err := c.ws.NextReader()
	if err != nil {
		return 0, err
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	c.buf = b
	if mt != websocket.BinaryMessage {
		return 0, errors.New("bench: server sent a text message")
	}
	return now(), nil
}

// handle processes every frame of the message in c.buf.
func (c *wsConn) handle(recvNS int64) error {
	b := c.buf
	f := &c.fv
	for off := 0; off < len(b); {
		var err error
		off, err = nextFrame(b, off, f)
		if err != nil {
			c.r.errs.add("decode")
			return err
		}
		switch string(f.t) {
		case protocol.TypeMsg:
			if c.tr != nil {
				st, ok := readPayload(f.d)
				c.tr.onMsg(c.r, f.s, st, ok, recvNS)
			} else {
				c.echo.Add(1)
			}
		case protocol.TypeOK:
			if c.pub != nil && f.id > joinID {
				c.pub.onReply(f.id, true, recvNS)
			}
		case protocol.TypeErr:
			c.r.errs.add("err:" + protocol.Code(f.code).String())
			if f.id == joinID && !c.joined {
				return fmt.Errorf("%w: join: %s", errHandshake, protocol.Code(f.code))
			}
			if c.pub != nil && f.id > joinID {
				c.pub.onReply(f.id, false, recvNS)
			}
		case protocol.TypeBye:
			c.byeCode = int(f.code)
			c.r.errs.add("bye:" + protocol.Code(f.code).String())
		case protocol.TypeLeft:
			c.r.errs.add("left:" + protocol.Code(f.code).String())
		case protocol.TypeWelcome:
			c.welcome = true
			c.connID = string(f.c)
		case protocol.TypeJoined:
			if f.id == joinID {
				c.joined = true
				if c.tr != nil {
					c.tr.lastSeq = f.s
				}
				if c.pv != nil {
					if err := c.pv.onJoined(f); err != nil {
						c.r.errs.add("decode:presence")
					}
				}
			}
		case protocol.TypePres:
			if c.pv != nil {
				if err := c.pv.onPres(f); err != nil {
					c.r.errs.add("decode:presence")
				}
			}
		}
	}
	return nil
}

// readLoop runs until the connection ends.
func (c *wsConn) readLoop() {
	defer c.r.readers.Done()
	for {
		recv, err := c.readMessage()
		if err != nil {
			c.ended(err)
			return
		}
		if err := c.handle(recv); err != nil {
			c.ended(err)
			return
		}
	}
}

// ended records why a connection ended, unless the bench ended it.
func (c *wsConn) ended(err error) {
	if c.r.stopping.Load() {
		return
	}
	c.dead.Store(true)
	if c.tr != nil {
		c.tr.dead.Store(true)
	}
	if k := readErrKey(err, c.byeCode); k != "" {
		c.r.errs.add(k)
	}
}

func (c *wsConn) netConn() net.Conn {
	if c.ws == nil {
		return c.raw
	}
	return c.ws.NetConn()
}

func (c *wsConn) setFD(fd int) { c.fd = fd }

// abort closes the socket at once, with a reset rather than a FIN so that
// thousands of closes leave no TIME_WAIT behind on either side.
func (c *wsConn) abort() {
	if c.fd > 0 {
		closeRaw(c.fd) // a polled connection: its Go conn is closed already
		c.fd = -1
		return
	}
	if c.ws == nil {
		if c.raw != nil {
			_ = c.raw.Close()
		}
		return
	}
	if tc, ok := c.ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.ws.NetConn().Close()
}

// probeCut reads what a non-reader was sent and tells how the server
// treated it: "slow_consumer" (a bye or close with that code), "closed" (cut
// without a bye), "open" (still connected: nothing came for idle, or the
// deadline passed) or "error". Publishing has stopped by then, so an open
// connection falls silent once its backlog is read, however long that took.
func (c *wsConn) probeCut(idle time.Duration, deadline time.Time) string {
	for {
		_ = c.ws.SetReadDeadline(minTime(time.Now().Add(idle), deadline))
		if _, err := c.readMessage(); err != nil {
			var ce *websocket.CloseError
			var ne net.Error
			switch {
			case c.byeCode == int(protocol.CodeSlowConsumer):
				return "slow_consumer"
			case errors.As(err, &ce) && ce.Code == protocol.CodeSlowConsumer.CloseCode():
				return "slow_consumer"
			case errors.As(err, &ne) && ne.Timeout():
				return "open"
			case c.byeCode >= 0:
				return "bye:" + protocol.Code(c.byeCode).String()
			}
			return "closed"
		}
		// Only bye matters here; frames are scanned, not counted.
		b := c.buf
		for off := 0; off < len(b); {
			var err error
			if off, err = nextFrame(b, off, &c.fv); err != nil {
				break
			}
			if string(c.fv.t) == protocol.TypeBye {
				c.byeCode = int(c.fv.code)
			}
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func dialErrKey(err error, resp *http.Response) string {
	if resp != nil {
		return "dial:http_" + strconv.Itoa(resp.StatusCode)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "dial:refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "dial:reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "dial:no_local_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "dial:too_many_open_files"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "dial:timeout"
	}
	return "dial:other"
}

// readErrKey names why a read failed; "" for a close that only confirms
// the bye already counted.
func readErrKey(err error, bye int) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		if c, ok := protocol.CodeFromClose(ce.Code); ok {
			if int(c) == bye {
				return "" // the bye was counted
			}
			return "close:" + c.String()
		}
		return "close:" + strconv.Itoa(ce.Code)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "read:eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "read:reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "read:timeout"
	case errors.Is(err, errHandshake):
		return "refused"
	case errors.Is(err, errShort), errors.Is(err, errBad):
		return "decode"
	}
	return "read:other"
}
