package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/roomd/roomd/protocol"
)

// The bench's own slice of the wire format. A subscriber decodes only what it
// counts (t, r, s, d, id, code) straight out of the read buffer, without
// allocating; anything else in a frame is skipped.

// frameView is the part of one server frame the bench looks at. Its slices
// alias the message buffer.
type frameView struct {
	t    []byte
	r    []byte
	d    []byte
	s    uint64
	id   uint64
	code uint64
	c    []byte // welcome: the connection id (in msg: the sender's)
	// Presence (presence.go): joined's pres and cnt, pres's lists and cnt,
	// as raw msgpack.
	pres, join, leave, upd, all []byte
	cnt                         uint64
}

var errShort = errors.New("bench: truncated msgpack")
var errBad = errors.New("bench: unexpected msgpack")

// nextFrame decodes the frame at b[off:] and returns the offset after it.
func nextFrame(b []byte, off int, f *frameView) (int, error) {
	*f = frameView{}
	n, off, err := mapLen(b, off)
	if err != nil {
		return off, err
	}
	for i := 0; i < n; i++ {
		var key []byte
		key, off, err = strBytes(b, off)
		if err != nil {
			return off, err
		}
		switch {
		case len(key) == 1 && key[0] == 't':
			f.t, off, err = strBytes(b, off)
		case len(key) == 1 && key[0] == 'r':
			f.r, off, err = strBytes(b, off)
		case len(key) == 1 && key[0] == 's':
			f.s, off, err = uintVal(b, off)
		case len(key) == 1 && key[0] == 'd':
			start := off
			off, err = skip(b, off)
			if err == nil {
				f.d = b[start:off]
			}
		case len(key) == 2 && key[0] == 'i' && key[1] == 'd':
			f.id, off, err = uintVal(b, off)
		case string(key) == "code":
			f.code, off, err = uintVal(b, off)
		case len(key) == 1 && key[0] == 'c':
			f.c, off, err = strBytes(b, off)
		case string(key) == "pres":
			f.pres, off, err = rawVal(b, off)
		case string(key) == "join":
			f.join, off, err = rawVal(b, off)
		case string(key) == "leave":
			f.leave, off, err = rawVal(b, off)
		case string(key) == "upd":
			f.upd, off, err = rawVal(b, off)
		case string(key) == "all":
			f.all, off, err = rawVal(b, off)
		case string(key) == "cnt":
			f.cnt, off, err = uintVal(b, off)
		default:
			off, err = skip(b, off)
		}
		if err != nil {
			return off, err
		}
	}
	return off, nil
}

// rawVal returns the msgpack value at b[off:] as it is.
func rawVal(b []byte, off int) ([]byte, int, error) {
	end, err := skip(b, off)
	if err != nil {
		return nil, off, err
	}
	return b[off:end], end, nil
}

func mapLen(b []byte, off int) (int, int, error) { return containerLen(b, off, 0x80, 0xde) }

// containerLen reads the length of the map or array at b[off:]: fix is its
// fix-size type byte (length in the low nibble), op16 its 16-bit one (the
// 32-bit one follows it).
func containerLen(b []byte, off int, fix, op16 byte) (int, int, error) {
	if off >= len(b) {
		return 0, off, errShort
	}
	c := b[off]
	switch {
	case c >= fix && c <= fix|0x0f:
		return int(c & 0x0f), off + 1, nil
	case c == op16:
		if off+3 > len(b) {
			return 0, off, errShort
		}
		return int(binary.BigEndian.Uint16(b[off+1:])), off + 3, nil
	case c == op16+1:
		if off+5 > len(b) {
			return 0, off, errShort
		}
		return int(binary.BigEndian.Uint32(b[off+1:])), off + 5, nil
	}
	return 0, off, errBad
}

func strBytes(b []byte, off int) ([]byte, int, error) {
	if off >= len(b) {
		return nil, off, errShort
	}
	c := b[off]
	var n, h int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, h = int(c&0x1f), 1
	case c == 0xd9:
		if off+2 > len(b) {
			return nil, off, errShort
		}
		n, h = int(b[off+1]), 2
	case c == 0xda:
		if off+3 > len(b) {
			return nil, off, errShort
		}
		n, h = int(binary.BigEndian.Uint16(b[off+1:])), 3
	case c == 0xdb:
		if off+5 > len(b) {
			return nil, off, errShort
		}
		n, h = int(binary.BigEndian.Uint32(b[off+1:])), 5
	case c == 0xc0:
		return nil, off + 1, nil
	default:
		return nil, off, errBad
	}
	end := off + h + n
	if end > len(b) || end < off {
		return nil, off, errShort
	}
	return b[off+h : end], end, nil
}

func uintVal(b []byte, off int) (uint64, int, error) {
	if off >= len(b) {
		return 0, off, errShort
	}
	c := b[off]
	need := map1[c]
	if off+1+need > len(b) {
		return 0, off, errShort
	}
	p := b[off+1:]
	switch {
	case c <= 0x7f:
		return uint64(c), off + 1, nil
	case c == 0xcc:
		return uint64(p[0]), off + 2, nil
	case c == 0xcd:
		return uint64(binary.BigEndian.Uint16(p)), off + 3, nil
	case c == 0xce:
		return uint64(binary.BigEndian.Uint32(p)), off + 5, nil
	case c == 0xcf:
		return binary.BigEndian.Uint64(p), off + 9, nil
	case c == 0xd0, c == 0xd1, c == 0xd2, c == 0xd3, c >= 0xe0, c == 0xc0:
		end, err := skip(b, off) // negative or nil: read as 0
		return 0, end, err
	}
	return 0, off, errBad
}

// map1 is the number of bytes after the first that a fixed-size integer
// needs; zero for everything else.
var map1 = [256]int{0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}

// skip returns the offset after the msgpack value at b[off:] (the
// protocol's own scanner: nested maps and arrays are walked with a counter,
// not recursion).
func skip(b []byte, off int) (int, error) {
	end, err := protocol.SkipValue(b, off)
	if err != nil {
		return off, fmt.Errorf("%w: %v", errBad, err)
	}
	return end, nil
}

// The payload a bench publisher sends: a msgpack bin of exactly size bytes
// (header included) that starts with
//
//	magic 0xB7 · phase (0 warmup, 1 measured) · publisher id u32 · counter u32 · send time unix ns u64
//
// and is padded with zeros. The counter of measured messages starts at 0.
const (
	payloadMagic = 0xB7
	payloadBody  = 1 + 1 + 4 + 4 + 8
	// MinPayload is the smallest --size: a bin8 header and the stamp.
	MinPayload = 2 + payloadBody
)

// stamp is what a payload carries.
type stamp struct {
	phase   byte
	pub     uint32
	counter uint32
	sentNS  int64
}

// binHeaderLen is the header size of a bin whose whole encoding is size bytes.
func binHeaderLen(size int) int {
	switch {
	case size-2 <= 0xff:
		return 2
	case size-3 <= 0xffff:
		return 3
	}
	return 5
}

// putPayload writes the payload into p, which must be size bytes long and
// already zeroed after the stamp.
func putPayload(p []byte, s stamp) {
	size := len(p)
	h := binHeaderLen(size)
	n := size - h
	switch h {
	case 2:
		p[0], p[1] = 0xc4, byte(n)
	case 3:
		p[0] = 0xc5
		binary.BigEndian.PutUint16(p[1:], uint16(n))
	default:
		p[0] = 0xc6
		binary.BigEndian.PutUint32(p[1:], uint32(n))
	}
	putStamp(p[h:], s)
}

func putStamp(b []byte, s stamp) {
	b[0] = payloadMagic
	b[1] = s.phase
	binary.BigEndian.PutUint32(b[2:], s.pub)
	binary.BigEndian.PutUint32(b[6:], s.counter)
	binary.BigEndian.PutUint64(b[10:], uint64(s.sentNS))
}

// readPayload reads the stamp of a msgpack payload; ok is false for anything
// a bench publisher did not send.
func readPayload(d []byte) (s stamp, ok bool) {
	if len(d) < 2 {
		return s, false
	}
	var body []byte
	switch d[0] {
	case 0xc4:
		body = d[2:]
	case 0xc5:
		if len(d) < 3 {
			return s, false
		}
		body = d[3:]
	case 0xc6:
		if len(d) < 5 {
			return s, false
		}
		body = d[5:]
	default:
		return s, false
	}
	return readStamp(body)
}

func readStamp(b []byte) (s stamp, ok bool) {
	if len(b) < payloadBody || b[0] != payloadMagic {
		return s, false
	}
	s.phase = b[1]
	s.pub = binary.BigEndian.Uint32(b[2:])
	s.counter = binary.BigEndian.Uint32(b[6:])
	s.sentNS = int64(binary.BigEndian.Uint64(b[10:]))
	return s, true
}

// pubEncoder builds pub frames into a reused buffer.
type pubEncoder struct {
	buf  []byte
	room []byte // the encoded "r" value
	size int
	fill []byte // what follows the stamp in each payload (nil: zeros)
}

func newPubEncoder(room string, size int) *pubEncoder {
	return &pubEncoder{room: protocol.AppendStr(nil, room), size: size}
}

// append adds {t: pub, id, r, d} to e.buf.
func (e *pubEncoder) append(id uint64, s stamp) {
	b := e.buf
	b = append(b, 0x84)
	b = protocol.AppendStr(b, "t")
	b = protocol.AppendStr(b, "pub")
	b = protocol.AppendStr(b, "id")
	b = protocol.AppendUint(b, id)
	b = protocol.AppendStr(b, "r")
	b = append(b, e.room...)
	b = protocol.AppendStr(b, "d")
	start := len(b)
	b = append(b, make([]byte, e.size)...)
	putPayload(b[start:], s)
	copy(b[len(b)-len(e.fill):], e.fill)
	e.buf = b
}

// chatSample is the text --payload-text fills payloads with.
const chatSample = "Hey, are we still meeting at the cafe tomorrow? I think the new place on the corner has better coffee, and they open at seven so we could get there early. Did you see the message from Sam about the deadline? It moved to Friday, which gives us a little more time to finish the slides. "

// chatText is n bytes of chat-like text.
func chatText(n int) []byte {
	b := make([]byte, 0, n+len(chatSample))
	for len(b) < n {
		b = append(b, chatSample...)
	}
	return b[:n]
}

// now is the clock every send stamp and receive time comes from.
func now() int64 { return time.Now().UnixNano() }
