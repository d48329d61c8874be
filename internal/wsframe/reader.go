package wsframe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Errors of Reader. A ProtocolError means the peer broke RFC 6455: the
// connection ends with close code CloseProtocolError.
var (
	// ErrTooLarge: a message passed the Reader's bound. It was read to its
	// end and discarded, so the next message can be read.
	ErrTooLarge = errors.New("wsframe: message over the size limit")
)

// ProtocolError is a frame the peer must not have sent.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "wsframe: protocol error: " + e.Reason }

func protocolErr(format string, args ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...)}
}

// CloseError is the peer's close frame: the connection is closing. Code is
// CloseNoStatus when the frame carried none.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsframe: closed by peer (%d %s)", e.Code, e.Text)
}

// Reader reads messages from one end of a WebSocket connection: it
// reassembles fragments, unmasks, checks the framing, bounds a message's
// size, and hands control frames to its handlers between messages' frames.
type Reader struct {
	// Masked: the frames read must be masked (a server reads a client's);
	// false: they must not be (a client reads a server's).
	Masked bool
	// OnPing and OnPong receive a ping's or pong's payload (valid only
	// during the call). Nil ignores them.
	OnPing, OnPong func(payload []byte)
	// Deflate: permessage-deflate was negotiated, without context takeover
	// (extension.go). A data message whose first frame has RSV1 set is
	// compressed: it is inflated, and limit bounds it both as sent and
	// inflated. False: RSV1 is a protocol error, as every reserved bit is.
	Deflate bool

	ctl [MaxControlPayload]byte
}

// header is one frame's header.
type header struct {
	fin  bool
	rsv1 bool // the message is compressed (first frame; Deflate only)
	op   Opcode
	n    int64
	mask bool
	key  [4]byte
}

// readHeader reads and checks a frame header.
func (r *Reader) readHeader(br *bufio.Reader) (header, error) {
	var h header
	b, err := br.Peek(2)
	if err != nil {
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return h, io.EOF
		}
		return h, unexpected(err)
	}
	b0, b1 := b[0], b[1]
	_, _ = br.Discard(2)
	h.fin, h.op, h.mask = b0&finBit != 0, Opcode(b0&0x0F), b1&maskBit != 0
	switch h.op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return h, protocolErr("unknown opcode %d", h.op)
	}
	if rsv := b0 & 0x70; rsv != 0 {
		switch {
		case rsv != rsv1Bit || !r.Deflate:
			return h, protocolErr("reserved bits set")
		case h.op.IsControl():
			return h, protocolErr("compressed control frame")
		case h.op == OpContinuation:
			return h, protocolErr("RSV1 on a continuation frame")
		}
		h.rsv1 = true
	}
	if h.mask != r.Masked {
		if r.Masked {
			return h, protocolErr("unmasked frame from a client")
		}
		return h, protocolErr("masked frame from a server")
	}
	switch n := b1 &^ maskBit; n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return h, unexpected(err)
		}
		h.n = int64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return h, unexpected(err)
		}
		u := binary.BigEndian.Uint64(ext[:])
		if u>>63 != 0 {
			return h, protocolErr("length with its top bit set")
		}
		h.n = int64(u)
	default:
		h.n = int64(n)
	}
	if h.op.IsControl() && (!h.fin || h.n > MaxControlPayload) {
		return h, protocolErr("fragmented or oversized control frame")
	}
	if h.mask {
		if _, err := io.ReadFull(br, h.key[:]); err != nil {
			return h, unexpected(err)
		}
	}
	return h, nil
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadMessage reads the next data message into buf (appended), handling
// the control frames before and inside it. It returns the message's
// opcode (OpText or OpBinary). A message over limit bytes (limit > 0) is
// read to its end without being kept, and ErrTooLarge returned. The peer's
// close frame ends it with a *CloseError; a framing fault with a
// *ProtocolError; a read error (deadline, EOF) as it is. A compressed
// message (Deflate) is inflated into buf; one that inflates past limit is
// discarded with ErrInflatedTooLarge (which is also ErrTooLarge).
func (r *Reader) ReadMessage(br *bufio.Reader, buf *bytes.Buffer, limit int) (Opcode, error) {
	var op Opcode
	var size int64
	started, base := false, buf.Len()
	var zf *inflater // a compressed message is gathered in zf.z
	defer func() {
		if zf != nil {
			zf.put()
		}
	}()
	dst := buf
	for {
		h, err := r.readHeader(br)
		if err != nil {
			return 0, err
		}
		if h.op.IsControl() {
			if err := r.control(br, h); err != nil {
				return 0, err
			}
			continue
		}
		switch {
		case h.op == OpContinuation && !started:
			return 0, protocolErr("continuation with no message begun")
		case h.op != OpContinuation && started:
			return 0, protocolErr("new message inside a fragmented one")
		case h.op != OpContinuation:
			op, started = h.op, true
			if h.rsv1 {
				zf = getInflater()
				dst = &zf.z
			}
		}
		size += h.n
		if limit > 0 && size > int64(limit) {
			if err := discard(br, h.n); err != nil {
				return 0, err
			}
			buf.Truncate(base)
			if zf != nil {
				zf.z.Reset()
			}
			if h.fin {
				return op, ErrTooLarge
			}
			continue
		}
		start := dst.Len()
		if _, err := io.CopyN(dst, br, h.n); err != nil {
			return 0, unexpected(err)
		}
		if h.mask {
			maskAt(h.key, dst.Bytes()[start:], 0)
		}
		if h.fin {
			if zf != nil {
				return op, zf.inflate(buf, limit)
			}
			return op, nil
		}
	}
}

// discard skips n payload bytes.
func discard(br *bufio.Reader, n int64) error {
	for n > 0 {
		d, err := br.Discard(int(min(n, 1<<20)))
		n -= int64(d)
		if err != nil {
			return unexpected(err)
		}
	}
	return nil
}

// maskAt masks b, which starts at offset off of its frame's payload.
func maskAt(key [4]byte, b []byte, off int) {
	if off&3 != 0 {
		key = [4]byte{key[off&3], key[(off+1)&3], key[(off+2)&3], key[(off+3)&3]}
	}
	Mask(key, b)
}

// control handles a control frame whose header was read.
func (r *Reader) control(br *bufio.Reader, h header) error {
	p := r.ctl[:h.n]
	if _, err := io.ReadFull(br, p); err != nil {
		return unexpected(err)
	}
	if h.mask {
		Mask(h.key, p)
	}
	switch h.op {
	case OpPing:
		if r.OnPing != nil {
			r.OnPing(p)
		}
	case OpPong:
		if r.OnPong != nil {
			r.OnPong(p)
		}
	case OpClose:
		return closeError(p)
	}
	return nil
}

// closeError decodes a close frame's payload (§5.5.1, §7.4).
func closeError(p []byte) error {
	switch {
	case len(p) == 0:
		return &CloseError{Code: CloseNoStatus}
	case len(p) == 1:
		return protocolErr("close frame of one byte")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return protocolErr("close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return protocolErr("close reason not UTF-8")
	}
	return &CloseError{Code: code, Text: string(p[2:])}
}

// validCloseCode reports whether a peer may send code (§7.4.1, §7.4.2).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
