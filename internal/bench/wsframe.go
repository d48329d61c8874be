package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomd/roomd/internal/wsframe"
)

// The raw read path: subscriber connections read by a poller (poll_linux.go)
// are parsed here, frame by frame, from the bytes the socket gave, instead
// of through gorilla's reader. Writes (hello, join, pongs) still go through
// gorilla, which masks them.

var errServerFrame = errors.New("bench: bad frame from the server")

// wsFrame parses the server frame at the start of b. n is 0 when b does not
// yet hold a whole frame. rsv1 is set on the first frame of a compressed
// message (permessage-deflate).
func wsFrame(b []byte) (op byte, fin, rsv1 bool, payload []byte, n int, err error) {
	if len(b) < 2 {
		return 0, false, false, nil, 0, nil
	}
	if b[1]&0x80 != 0 || b[0]&0x30 != 0 {
		return 0, false, false, nil, 0, errServerFrame // masked, or reserved bits
	}
	op, fin, rsv1 = b[0]&0x0F, b[0]&0x80 != 0, b[0]&0x40 != 0
	size, h := uint64(b[1]&0x7F), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return 0, false, false, nil, 0, nil
		}
		size, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, false, false, nil, 0, nil
		}
		size, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if size > 64<<20 {
		return 0, false, false, nil, 0, errServerFrame
	}
	if uint64(len(b)-h) < size {
		return 0, false, false, nil, 0, nil
	}
	end := h + int(size)
	return op, fin, rsv1, b[h:end], end, nil
}

// consume handles the whole frames at the start of b and returns how many
// bytes it used. With until set, it stops after the message that makes it
// true. A non-nil error ends the connection.
func (c *wsConn) consume(b []byte, recvNS int64, until func() bool) (int, error) {
	used := 0
	for used < len(b) {
		if until != nil && until() {
			break
		}
		op, fin, rsv1, p, n, err := wsFrame(b[used:])
		if err != nil {
			return used, err
		}
		if n == 0 {
			break
		}
		used += n
		if rsv1 {
			if !c.deflate || op != websocket.BinaryMessage {
				return used, errServerFrame
			}
			c.zmsg = true
		}
		switch op {
		case websocket.BinaryMessage, 0: // 0: continuation
			if !fin || len(c.frag) > 0 {
				c.frag = append(c.frag, p...)
				if !fin {
					continue
				}
				p = c.frag
			}
			if c.zmsg {
				if p, err = c.inflate(p); err != nil {
					return used, err
				}
			}
			c.buf = p
			err = c.handle(recvNS)
			c.buf, c.frag = nil, c.frag[:0]
			if err != nil {
				return used, err
			}
		case websocket.PingMessage:
			if c.fd > 0 {
				err = c.rawPong(p)
			} else {
				err = c.ws.WriteControl(websocket.PongMessage, p, time.Now().Add(c.r.cfg.DialTimeout))
			}
			if err != nil {
				return used, err
			}
		case websocket.PongMessage:
		case websocket.CloseMessage:
			ce := &websocket.CloseError{Code: websocket.CloseNoStatusReceived}
			if len(p) >= 2 {
				ce.Code, ce.Text = int(binary.BigEndian.Uint16(p)), string(p[2:])
			}
			return used, ce
		default:
			return used, errors.New("bench: server sent a text message")
		}
	}
	return used, nil
}

// feed handles bytes read from the socket: every whole frame, the rest kept
// in c.pend for the next read (nil: only what c.pend holds).
func (c *wsConn) feed(b []byte, recvNS int64) error {
	data := b
	if len(c.pend) > 0 {
		c.pend = append(c.pend, b...)
		data = c.pend
	}
	used, err := c.consume(data, recvNS, nil)
	if err != nil {
		return err
	}
	if len(c.pend) > 0 {
		c.pend = c.pend[:copy(c.pend, c.pend[used:])]
	} else {
		c.pend = append(c.pend[:0], data[used:]...)
	}
	return nil
}

// readRawUntil reads the socket (blocking, with the deadline set on it) and
// handles messages until done reports true; bytes after that message stay
// in c.pend for the poller.
func (c *wsConn) readRawUntil(done func() bool) error {
	nc := c.ws.NetConn()
	var tmp [4096]byte
	for {
		used, err := c.consume(c.pend, now(), done)
		c.pend = c.pend[:copy(c.pend, c.pend[used:])]
		if err != nil {
			return err
		}
		if done() {
			return nil
		}
		if c.byeCode >= 0 {
			return errHandshakeBye(c.byeCode)
		}
		n, err := nc.Read(tmp[:])
		if err != nil {
			return err
		}
		c.pend = append(c.pend, tmp[:n]...)
	}
}

// inflate returns the compressed message body z inflated, in c's inflate
// buffer (valid until the next message).
func (c *wsConn) inflate(z []byte) ([]byte, error) {
	c.zmsg = false
	if c.zbuf == nil {
		c.zbuf = new(bytes.Buffer)
	}
	c.zbuf.Reset()
	if err := wsframe.Inflate(c.zbuf, z, 64<<20); err != nil {
		return nil, err
	}
	return c.zbuf.Bytes(), nil
}
