package protocol

import (
	"encoding/binary"
	"errors"
)

// A byte-level msgpack scanner. Split, DecodeFrame and ValidatePayload walk
// messages with it instead of a general decoder: it never recurses (a message
// of 64 KiB of nested arrays must not cost megabytes of stack), never
// allocates, and checks every length against the bytes that are left.

var (
	errTruncated = errors.New("truncated value")
	errBadCode   = errors.New("invalid type byte 0xc1")
)

// valueKind classifies a msgpack value by what follows its header.
type valueKind uint8

const (
	kindBytes valueKind = iota // nil, bool, number, str, bin: n bytes of body
	kindArray                  // n values follow
	kindMap                    // n values (n/2 pairs) follow
	kindExt                    // n bytes of body: the ext type byte, then its data
)

// head decodes the header of the msgpack value that starts at b[off]. It
// returns the value's first byte, its kind, the offset where its body starts,
// and n: the body's length in bytes, or for arrays and maps the number of
// values that follow (twice the number of pairs for a map). n is not checked
// against len(b).
func head(b []byte, off int) (c byte, k valueKind, body int, n uint64, err error) {
	if off >= len(b) {
		return 0, 0, off, 0, errTruncated
	}
	c = b[off]
	off++
	switch {
	case c <= 0x7f || c >= 0xe0: // positive, negative fixint
		return c, kindBytes, off, 0, nil
	case c <= 0x8f: // fixmap
		return c, kindMap, off, 2 * uint64(c&0x0f), nil
	case c <= 0x9f: // fixarray
		return c, kindArray, off, uint64(c & 0x0f), nil
	case c <= 0xbf: // fixstr
		return c, kindBytes, off, uint64(c & 0x1f), nil
	}
	var lenBytes int // size of a length field that follows c
	var extra uint64 // body bytes beyond that length (an ext's type byte)
	k = kindBytes
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return c, kindBytes, off, 0, nil
	case 0xc1:
		return c, 0, off, 0, errBadCode
	case 0xc4, 0xd9: // bin8, str8
		lenBytes = 1
	case 0xc5, 0xda: // bin16, str16
		lenBytes = 2
	case 0xc6, 0xdb: // bin32, str32
		lenBytes = 4
	case 0xc7: // ext8
		lenBytes, extra, k = 1, 1, kindExt
	case 0xc8: // ext16
		lenBytes, extra, k = 2, 1, kindExt
	case 0xc9: // ext32
		lenBytes, extra, k = 4, 1, kindExt
	case 0xcc, 0xd0: // uint8, int8
		return c, kindBytes, off, 1, nil
	case 0xcd, 0xd1: // uint16, int16
		return c, kindBytes, off, 2, nil
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return c, kindBytes, off, 4, nil
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return c, kindBytes, off, 8, nil
	case 0xd4: // fixext1
		return c, kindExt, off, 2, nil
	case 0xd5: // fixext2
		return c, kindExt, off, 3, nil
	case 0xd6: // fixext4
		return c, kindExt, off, 5, nil
	case 0xd7: // fixext8
		return c, kindExt, off, 9, nil
	case 0xd8: // fixext16
		return c, kindExt, off, 17, nil
	case 0xdc: // array16
		lenBytes, k = 2, kindArray
	case 0xdd: // array32
		lenBytes, k = 4, kindArray
	case 0xde: // map16
		lenBytes, k = 2, kindMap
	case 0xdf: // map32
		lenBytes, k = 4, kindMap
	}
	if len(b)-off < lenBytes {
		return c, k, off, 0, errTruncated
	}
	switch lenBytes {
	case 1:
		n = uint64(b[off])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b[off:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(b[off:]))
	}
	off += lenBytes
	if k == kindMap {
		n *= 2
	}
	return c, k, off, n + extra, nil
}

// SkipValue returns the offset just past the msgpack value that starts at
// b[off], with the scanner's guarantees (no recursion, no allocation, every
// length checked): for tools that read frames in place, like the load
// generator.
func SkipValue(b []byte, off int) (int, error) { return skipValue(b, off) }

// skipValue returns the offset just past the msgpack value that starts at
// b[off].
func skipValue(b []byte, off int) (int, error) {
	pending := uint64(1) // values still to skip
	for pending > 0 {
		_, k, body, n, err := head(b, off)
		if err != nil {
			return off, err
		}
		pending--
		off = body
		left := uint64(len(b) - off)
		if k == kindArray || k == kindMap {
			pending += n
			if pending > left { // every value takes at least one byte
				return off, errTruncated
			}
			continue
		}
		if n > left {
			return off, errTruncated
		}
		off += int(n)
	}
	return off, nil
}
