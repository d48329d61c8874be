package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrMalformed is returned by Split when a message is not a sequence of
// complete msgpack values. Such a message cannot be recovered from: the
// connection that sent it is closed with CodeBadProtocol.
var ErrMalformed = errors.New("protocol: malformed msgpack")

// MaxNesting bounds the nesting depth of maps and arrays in a payload: a
// payload may hold at most MaxNesting levels of them.
const MaxNesting = 32

// Split appends to dst one sub-slice of msg for each msgpack value that msg
// carries, in order, and returns the extended slice. The sub-slices alias msg.
// It fails with ErrMalformed when msg is empty or does not end on a value
// boundary. At most maxFrames values are accepted (0 means no limit); more is
// reported as a *Error with CodeTooLarge.
func Split(dst [][]byte, msg []byte, maxFrames int) ([][]byte, error) {
	if len(msg) == 0 {
		return dst, ErrMalformed
	}
	start := 0
	for n := 0; start < len(msg); n++ {
		if maxFrames > 0 && n == maxFrames {
			return dst, Errorf(CodeTooLarge, "more than %d frames in one message", maxFrames)
		}
		end, err := skipValue(msg, start)
		if err != nil {
			return dst, fmt.Errorf("%w: %v at byte %d", ErrMalformed, err, end)
		}
		dst = append(dst, msg[start:end])
		start = end
	}
	return dst, nil
}

// frameReader reads the fields of one frame.
type frameReader struct {
	b   []byte
	off int
}

// DecodeFrame decodes one frame (a single msgpack map) into f, which is reset
// first. Unknown keys are skipped. A value that is valid msgpack but not a valid
// frame yields a *Error with CodeBadRequest.
func DecodeFrame(b []byte, f *Frame) error {
	*f = Frame{}
	if len(b) == 0 {
		return Errorf(CodeBadRequest, "empty frame")
	}
	r := frameReader{b: b}
	_, k, body, n, err := head(b, 0)
	if err != nil {
		return Errorf(CodeBadRequest, "bad frame: %v", err)
	}
	if k != kindMap {
		return Errorf(CodeBadRequest, "a frame must be a msgpack map")
	}
	r.off = body
	for i := uint64(0); i < n/2; i++ {
		c, _, kbody, klen, err := head(b, r.off)
		if err != nil {
			return Errorf(CodeBadRequest, "truncated frame")
		}
		if !isStr(c) {
			return Errorf(CodeBadRequest, "frame keys must be strings")
		}
		if klen > uint64(len(b)-kbody) {
			return Errorf(CodeBadRequest, "truncated frame")
		}
		key := b[kbody : kbody+int(klen)]
		r.off = kbody + int(klen)
		if err := r.field(f, key); err != nil {
			return Errorf(CodeBadRequest, "key %q: %v", key, err)
		}
	}
	if r.off != len(b) {
		return Errorf(CodeBadRequest, "trailing bytes after frame")
	}
	if f.T == "" {
		return Errorf(CodeBadRequest, "missing key \"t\"")
	}
	return nil
}

// field decodes the value of key into f.
func (r *frameReader) field(f *Frame, key []byte) error {
	var err error
	switch string(key) {
	case "t":
		f.T, err = r.typ()
	case "id":
		f.ID, err = r.uint()
	case "r":
		f.R, err = r.str()
	case "d":
		f.D, err = r.raw()
	case "v":
		f.V, err = r.int()
	case "tok":
		f.Tok, err = r.str()
	case "cli":
		f.Cli, err = r.str()
	case "c":
		f.C, err = r.str()
	case "u":
		f.U, err = r.str()
	case "n":
		f.N, err = r.str()
	case "ping":
		f.Ping, err = r.int()
	case "exp":
		f.Exp, err = r.int()
	case "since":
		f.Since, err = r.since()
	case "p":
		f.P, err = r.raw()
	case "h":
		f.H, err = r.int()
	case "eph":
		f.Eph, err = r.bool()
	case "key":
		f.Key, err = r.str()
	case "k":
		f.K, err = r.str()
	case "e":
		f.E, err = r.str()
	case "s":
		f.S, err = r.uint()
	case "ts":
		f.TS, err = r.int()
	case "log":
		f.Log, err = r.raw()
	case "reset":
		f.Reset, err = r.bool()
	case "pres":
		f.Pres, err = r.raw()
	case "st":
		f.St, err = r.raw()
	case "join":
		f.Join, err = r.raw()
	case "leave":
		f.Leave, err = r.raw()
	case "upd":
		f.Upd, err = r.raw()
	case "cnt":
		f.Cnt, err = r.uint()
	case "all":
		f.All, err = r.raw()
	case "code":
		var u uint64
		u, err = r.uint()
		if err == nil && u > math.MaxUint16 {
			err = errors.New("code out of range")
		}
		f.Code = Code(u)
	case "msg":
		f.Msg, err = r.str()
	default:
		r.off, err = skipValue(r.b, r.off)
	}
	return err
}

func isStr(c byte) bool {
	return c >= 0xa0 && c <= 0xbf || c == 0xd9 || c == 0xda || c == 0xdb
}

// isNil reports whether the next value is nil, and consumes it if so.
func (r *frameReader) isNil() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// strBytes reads a string, or nil as an empty one. The result aliases r.b.
func (r *frameReader) strBytes() ([]byte, error) {
	if r.isNil() {
		return nil, nil
	}
	c, _, body, n, err := head(r.b, r.off)
	if err != nil {
		return nil, err
	}
	if !isStr(c) {
		return nil, errors.New("want a string")
	}
	if n > uint64(len(r.b)-body) {
		return nil, errTruncated
	}
	r.off = body + int(n)
	return r.b[body:r.off], nil
}

// str reads a string or nil.
func (r *frameReader) str() (string, error) {
	s, err := r.strBytes()
	return string(s), err
}

// typ reads a frame type, without allocating for the known ones.
func (r *frameReader) typ() (string, error) {
	s, err := r.strBytes()
	if err != nil {
		return "", err
	}
	switch string(s) {
	case TypeHello:
		return TypeHello, nil
	case TypeJoin:
		return TypeJoin, nil
	case TypeLeave:
		return TypeLeave, nil
	case TypePub:
		return TypePub, nil
	case TypePres:
		return TypePres, nil
	case TypeSet:
		return TypeSet, nil
	case TypeAuth:
		return TypeAuth, nil
	case TypeWelcome:
		return TypeWelcome, nil
	case TypeJoined:
		return TypeJoined, nil
	case TypeMsg:
		return TypeMsg, nil
	case TypeState:
		return TypeState, nil
	case TypeEph:
		return TypeEph, nil
	case TypeOK:
		return TypeOK, nil
	case TypeErr:
		return TypeErr, nil
	case TypeLeft:
		return TypeLeft, nil
	case TypePing:
		return TypePing, nil
	case TypeBye:
		return TypeBye, nil
	}
	return string(s), nil
}

// number reads an integer. neg is true when the value is below zero, in which
// case u holds it as an int64's two's complement.
func (r *frameReader) number() (u uint64, neg bool, err error) {
	c, _, body, n, err := head(r.b, r.off)
	if err != nil {
		return 0, false, err
	}
	isInt := c <= 0x7f || c >= 0xe0 || c >= 0xcc && c <= 0xd3
	if !isInt {
		return 0, false, errors.New("want an integer")
	}
	if n > uint64(len(r.b)-body) {
		return 0, false, errTruncated
	}
	p := r.b[body:]
	r.off = body + int(n)
	switch {
	case c <= 0x7f:
		return uint64(c), false, nil
	case c >= 0xe0:
		return uint64(int64(int8(c))), true, nil
	case c == 0xcc:
		return uint64(p[0]), false, nil
	case c == 0xcd:
		return uint64(binary.BigEndian.Uint16(p)), false, nil
	case c == 0xce:
		return uint64(binary.BigEndian.Uint32(p)), false, nil
	case c == 0xcf:
		return binary.BigEndian.Uint64(p), false, nil
	case c == 0xd0:
		v := int64(int8(p[0]))
		return uint64(v), v < 0, nil
	case c == 0xd1:
		v := int64(int16(binary.BigEndian.Uint16(p)))
		return uint64(v), v < 0, nil
	case c == 0xd2:
		v := int64(int32(binary.BigEndian.Uint32(p)))
		return uint64(v), v < 0, nil
	default: // 0xd3
		v := int64(binary.BigEndian.Uint64(p))
		return uint64(v), v < 0, nil
	}
}

// uint reads a non-negative integer or nil.
func (r *frameReader) uint() (uint64, error) {
	if r.isNil() {
		return 0, nil
	}
	u, neg, err := r.number()
	if err != nil {
		return 0, err
	}
	if neg {
		return 0, errors.New("want a non-negative integer")
	}
	return u, nil
}

// int reads an integer or nil.
func (r *frameReader) int() (int64, error) {
	if r.isNil() {
		return 0, nil
	}
	u, neg, err := r.number()
	if err != nil {
		return 0, err
	}
	if !neg && u > math.MaxInt64 {
		return 0, errors.New("integer out of range")
	}
	return int64(u), nil
}

// bool reads a bool or nil.
func (r *frameReader) bool() (bool, error) {
	if r.isNil() {
		return false, nil
	}
	if r.off >= len(r.b) {
		return false, errTruncated
	}
	switch r.b[r.off] {
	case 0xc2:
		r.off++
		return false, nil
	case 0xc3:
		r.off++
		return true, nil
	}
	return false, errors.New("want a bool")
}

// raw reads any value and returns a copy of its encoding.
func (r *frameReader) raw() (Raw, error) {
	end, err := skipValue(r.b, r.off)
	if err != nil {
		return nil, err
	}
	v := make(Raw, end-r.off)
	copy(v, r.b[r.off:end])
	r.off = end
	return v, nil
}

// since reads a resume point {e, s}, or nil.
func (r *frameReader) since() (*Since, error) {
	if r.isNil() {
		return nil, nil
	}
	_, k, body, n, err := head(r.b, r.off)
	if err != nil {
		return nil, err
	}
	if k != kindMap {
		return nil, errors.New("want a map {e, s}")
	}
	r.off = body
	s := new(Since)
	for i := uint64(0); i < n/2; i++ {
		key, err := r.strBytes()
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "e":
			s.E, err = r.str()
		case "s":
			s.S, err = r.uint()
		default:
			r.off, err = skipValue(r.b, r.off)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

var encPool = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	return e
}}

type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// Encode encodes one value (normally a server frame struct) as msgpack, with
// integers in their most compact form. The returned slice is freshly allocated
// and never reused, so it may be shared by any number of readers.
func Encode(v any) ([]byte, error) {
	e := encPool.Get().(*encoder)
	defer encPool.Put(e)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	out := make([]byte, e.buf.Len())
	copy(out, e.buf.Bytes())
	if e.buf.Cap() > 64<<10 {
		e.buf = bytes.Buffer{} // do not keep a large buffer pooled
	}
	return out, nil
}

// MustEncode is Encode for values whose encoding cannot fail (the frame types
// of this package with valid Raw fields). It panics on error, which is a bug.
func MustEncode(v any) []byte {
	b, err := Encode(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: encode %T: %v", v, err))
	}
	return b
}

// ValidatePayload checks that p is a single msgpack value with no ext types
// and nesting no deeper than MaxNesting. Payloads are otherwise opaque.
func ValidatePayload(p Raw) error {
	if len(p) == 0 {
		return nil
	}
	// left[i] counts the values still to read at nesting level i; level 0
	// holds the payload itself, level i the contents of its i-th open
	// map or array.
	var left [MaxNesting + 1]uint64
	left[0] = 1
	depth, off := 0, 0
	for depth >= 0 {
		if left[depth] == 0 {
			depth--
			continue
		}
		left[depth]--
		_, k, body, n, err := head(p, off)
		if err == errTruncated {
			return Errorf(CodeBadRequest, "truncated payload")
		}
		if err != nil {
			return Errorf(CodeBadRequest, "bad payload: %v", err)
		}
		off = body
		rest := uint64(len(p) - off)
		switch k {
		case kindExt:
			return Errorf(CodeBadRequest, "payload contains a msgpack ext type")
		case kindArray, kindMap:
			if depth == MaxNesting {
				return Errorf(CodeBadRequest, "payload nested deeper than %d", MaxNesting)
			}
			if n > rest {
				return Errorf(CodeBadRequest, "truncated payload")
			}
			depth++
			left[depth] = n
		default:
			if n > rest {
				return Errorf(CodeBadRequest, "truncated payload")
			}
			off += int(n)
		}
	}
	if off != len(p) {
		return Errorf(CodeBadRequest, "trailing bytes after payload")
	}
	return nil
}
