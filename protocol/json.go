package protocol

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Transcoding between msgpack payloads and JSON, for SSE observers and the
// HTTP API. Both directions walk the bytes with an explicit stack (no
// recursion, no interface{} values) and bound nesting by MaxNesting, like
// ValidatePayload.

// MaxSafeInteger is the largest integer a JSON number carries exactly in
// JavaScript (2^53 − 1). AppendJSON writes integers beyond ±MaxSafeInteger as
// decimal strings.
const MaxSafeInteger = 1<<53 - 1

// AppendJSON appends the JSON form of the msgpack value v to dst:
//   - nil → null, bool → true/false; an empty (absent) v → null;
//   - integers → numbers, or decimal strings beyond ±MaxSafeInteger;
//   - floats → numbers (NaN and ±Inf → null);
//   - str → string (invalid UTF-8 replaced by U+FFFD);
//   - bin → base64 string (standard alphabet, padded);
//   - array → array; map → object, in the map's order. Keys that are not
//     strings are stringified: numbers in their JSON form, bin as base64,
//     nil, true and false by name. A map or array used as a key is refused.
//
// Ext types, nesting deeper than MaxNesting, truncated values and trailing
// bytes are refused with a *Error of CodeBadRequest; dst is then returned
// unchanged.
func AppendJSON(dst []byte, v Raw) ([]byte, error) {
	if len(v) == 0 {
		return append(dst, "null"...), nil
	}
	out, err := appendJSON(dst, v)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// jsonLevel is one open map or array while transcoding to JSON.
type jsonLevel struct {
	left  uint64 // values still to read (a map counts keys and values)
	total uint64
	isMap bool
}

func appendJSON(dst []byte, b []byte) ([]byte, error) {
	var stack [MaxNesting]jsonLevel
	depth := 0 // open maps and arrays
	off := 0
	for {
		if depth > 0 {
			lv := &stack[depth-1]
			if lv.left == 0 {
				if lv.isMap {
					dst = append(dst, '}')
				} else {
					dst = append(dst, ']')
				}
				depth--
				if depth == 0 {
					break
				}
				continue
			}
			isKey := lv.isMap && lv.left%2 == 0
			if lv.left != lv.total {
				if lv.isMap && !isKey {
					dst = append(dst, ':')
				} else {
					dst = append(dst, ',')
				}
			}
			lv.left--
			if isKey {
				var err error
				if dst, off, err = appendJSONKey(dst, b, off); err != nil {
					return dst, err
				}
				continue
			}
		}
		c, k, body, n, err := head(b, off)
		if err != nil {
			return dst, jsonMsgpackError(err)
		}
		off = body
		rest := uint64(len(b) - off)
		switch k {
		case kindExt:
			return dst, Errorf(CodeBadRequest, "payload contains a msgpack ext type")
		case kindArray, kindMap:
			if depth == MaxNesting {
				return dst, Errorf(CodeBadRequest, "payload nested deeper than %d", MaxNesting)
			}
			if n > rest { // every value takes at least one byte
				return dst, Errorf(CodeBadRequest, "truncated payload")
			}
			stack[depth] = jsonLevel{left: n, total: n, isMap: k == kindMap}
			depth++
			if k == kindMap {
				dst = append(dst, '{')
			} else {
				dst = append(dst, '[')
			}
			continue
		}
		if n > rest {
			return dst, Errorf(CodeBadRequest, "truncated payload")
		}
		dst = appendJSONScalar(dst, c, b[off:off+int(n)], false)
		off += int(n)
		if depth == 0 {
			break
		}
	}
	if off != len(b) {
		return dst, Errorf(CodeBadRequest, "trailing bytes after payload")
	}
	return dst, nil
}

// appendJSONKey appends the map key that starts at b[off] as a JSON string
// and returns the offset past it.
func appendJSONKey(dst []byte, b []byte, off int) ([]byte, int, error) {
	c, k, body, n, err := head(b, off)
	if err != nil {
		return dst, off, jsonMsgpackError(err)
	}
	switch k {
	case kindArray, kindMap:
		return dst, off, Errorf(CodeBadRequest, "payload has a map or array as a map key")
	case kindExt:
		return dst, off, Errorf(CodeBadRequest, "payload contains a msgpack ext type")
	}
	if n > uint64(len(b)-body) {
		return dst, off, Errorf(CodeBadRequest, "truncated payload")
	}
	return appendJSONScalar(dst, c, b[body:body+int(n)], true), body + int(n), nil
}

func jsonMsgpackError(err error) error {
	if err == errTruncated {
		return Errorf(CodeBadRequest, "truncated payload")
	}
	return Errorf(CodeBadRequest, "bad payload: %v", err)
}

// appendJSONScalar appends the scalar whose type byte is c and whose body
// (after any length field) is p. With asKey the result is always a string.
func appendJSONScalar(dst []byte, c byte, p []byte, asKey bool) []byte {
	switch {
	case c <= 0x7f:
		return appendJSONInt(dst, int64(c), asKey)
	case c >= 0xe0:
		return appendJSONInt(dst, int64(int8(c)), asKey)
	case c >= 0xa0 && c <= 0xbf, c == 0xd9, c == 0xda, c == 0xdb:
		return appendJSONString(dst, p)
	}
	switch c {
	case 0xc0:
		return appendJSONWord(dst, "null", asKey)
	case 0xc2:
		return appendJSONWord(dst, "false", asKey)
	case 0xc3:
		return appendJSONWord(dst, "true", asKey)
	case 0xc4, 0xc5, 0xc6:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, p)
		return append(dst, '"')
	case 0xca:
		return appendJSONFloat(dst, float64(math.Float32frombits(binary.BigEndian.Uint32(p))), 32, asKey)
	case 0xcb:
		return appendJSONFloat(dst, math.Float64frombits(binary.BigEndian.Uint64(p)), 64, asKey)
	case 0xcc:
		return appendJSONInt(dst, int64(p[0]), asKey)
	case 0xcd:
		return appendJSONInt(dst, int64(binary.BigEndian.Uint16(p)), asKey)
	case 0xce:
		return appendJSONInt(dst, int64(binary.BigEndian.Uint32(p)), asKey)
	case 0xcf:
		u := binary.BigEndian.Uint64(p)
		if u > MaxSafeInteger || asKey {
			dst = append(dst, '"')
			dst = strconv.AppendUint(dst, u, 10)
			return append(dst, '"')
		}
		return strconv.AppendUint(dst, u, 10)
	case 0xd0:
		return appendJSONInt(dst, int64(int8(p[0])), asKey)
	case 0xd1:
		return appendJSONInt(dst, int64(int16(binary.BigEndian.Uint16(p))), asKey)
	case 0xd2:
		return appendJSONInt(dst, int64(int32(binary.BigEndian.Uint32(p))), asKey)
	case 0xd3:
		return appendJSONInt(dst, int64(binary.BigEndian.Uint64(p)), asKey)
	}
	// head reports every other type byte as an error, an ext or a container.
	panic("protocol: appendJSONScalar: unexpected type byte")
}

func appendJSONWord(dst []byte, w string, asKey bool) []byte {
	if asKey {
		dst = append(dst, '"')
		dst = append(dst, w...)
		return append(dst, '"')
	}
	return append(dst, w...)
}

func appendJSONInt(dst []byte, i int64, asKey bool) []byte {
	if asKey || i > MaxSafeInteger || i < -MaxSafeInteger {
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, i, 10)
		return append(dst, '"')
	}
	return strconv.AppendInt(dst, i, 10)
}

// appendJSONFloat formats f as encoding/json does: the shortest
// representation, in exponent form only for very small or large magnitudes.
// NaN and ±Inf become null (as a key: "NaN", "+Inf", "-Inf").
func appendJSONFloat(dst []byte, f float64, bits int, asKey bool) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if asKey {
			dst = append(dst, '"')
			dst = strconv.AppendFloat(dst, f, 'g', -1, bits)
			return append(dst, '"')
		}
		return append(dst, "null"...)
	}
	if asKey {
		dst = append(dst, '"')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 → e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	if asKey {
		dst = append(dst, '"')
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, U+2028 and U+2029 escaped (for JavaScript),
// invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(dst []byte, s string) []byte {
	return appendJSONString(dst, s)
}

func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is yet to be copied as is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		default:
			r, size = utf8.DecodeRuneInString(string(s[i:]))
		}
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// FromJSON converts one JSON value to msgpack, for HTTP API bodies: objects
// become maps (keys in the order given, duplicates kept), arrays arrays,
// strings str, true/false/null themselves. A number written without fraction
// or exponent that fits int64 or uint64 becomes an integer in its most compact
// encoding; any other number becomes a float64. Nesting deeper than
// MaxNesting, numbers beyond float64's range and invalid JSON are refused with
// a *Error of CodeBadRequest. Invalid UTF-8 and lone surrogates in strings are
// replaced by U+FFFD, as encoding/json does.
func FromJSON(b []byte) (Raw, error) {
	p := jsonParser{b: b, out: make([]byte, 0, len(b)+8)}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return Raw(p.out), nil
}

// jsonOpen is one open object or array while converting from JSON.
type jsonOpen struct {
	hdr   int    // offset in out of the one-byte header placeholder
	count uint64 // elements (pairs for an object) so far
	isObj bool
}

type jsonParser struct {
	b       []byte
	i       int
	out     []byte
	scratch []byte // decoded strings that needed unescaping
}

func (p *jsonParser) errorf(format string, args ...any) *Error {
	return Errorf(CodeBadRequest, "invalid JSON at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) parse() error {
	var stack [MaxNesting]jsonOpen
	depth := 0
	p.skipSpace()
	if p.i == len(p.b) {
		return p.errorf("no value")
	}
	for {
		// A value is expected at p.i (spaces skipped).
		if p.i == len(p.b) {
			return p.errorf("unexpected end")
		}
		switch c := p.b[p.i]; c {
		case '{', '[':
			if depth == MaxNesting {
				return p.errorf("nested deeper than %d", MaxNesting)
			}
			isObj := c == '{'
			stack[depth] = jsonOpen{hdr: len(p.out), isObj: isObj}
			depth++
			p.out = append(p.out, 0) // header placeholder
			p.i++
			p.skipSpace()
			if p.i < len(p.b) && (p.b[p.i] == '}' && isObj || p.b[p.i] == ']' && !isObj) {
				p.i++
				p.close(&stack[depth-1])
				depth--
				break
			}
			if isObj {
				if err := p.key(); err != nil {
					return err
				}
			}
			continue
		case '"':
			if err := p.str(); err != nil {
				return err
			}
		case 't':
			if err := p.literal("true", 0xc3); err != nil {
				return err
			}
		case 'f':
			if err := p.literal("false", 0xc2); err != nil {
				return err
			}
		case 'n':
			if err := p.literal("null", 0xc0); err != nil {
				return err
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return p.errorf("unexpected %q", c)
			}
			if err := p.number(); err != nil {
				return err
			}
		}
		// A value ended: close containers, or go on to the next element.
		for {
			if depth == 0 {
				p.skipSpace()
				if p.i != len(p.b) {
					return p.errorf("trailing data after value")
				}
				return nil
			}
			lv := &stack[depth-1]
			lv.count++
			if lv.count > math.MaxUint32 {
				return p.errorf("too many elements")
			}
			p.skipSpace()
			if p.i == len(p.b) {
				return p.errorf("unexpected end")
			}
			c := p.b[p.i]
			p.i++
			if c == ',' {
				p.skipSpace()
				if lv.isObj {
					if err := p.key(); err != nil {
						return err
					}
				}
				break
			}
			if lv.isObj && c == '}' || !lv.isObj && c == ']' {
				p.close(lv)
				depth--
				continue
			}
			p.i--
			return p.errorf("unexpected %q after element", c)
		}
	}
}

// key reads an object key and its colon, leaving p.i at the value.
func (p *jsonParser) key() error {
	if p.i == len(p.b) {
		return p.errorf("unexpected end")
	}
	if p.b[p.i] != '"' {
		return p.errorf("object key is not a string")
	}
	if err := p.str(); err != nil {
		return err
	}
	p.skipSpace()
	if p.i == len(p.b) || p.b[p.i] != ':' {
		return p.errorf("missing ':' after object key")
	}
	p.i++
	p.skipSpace()
	return nil
}

// close writes the header of a finished object or array in place of its
// one-byte placeholder, moving the contents when the header needs more room.
func (p *jsonParser) close(lv *jsonOpen) {
	n := lv.count
	var h [5]byte
	var hl int
	switch {
	case n <= 15:
		h[0], hl = 0x90|byte(n), 1
		if lv.isObj {
			h[0] = 0x80 | byte(n)
		}
	case n <= math.MaxUint16:
		h[0], hl = 0xdc, 3
		if lv.isObj {
			h[0] = 0xde
		}
		binary.BigEndian.PutUint16(h[1:], uint16(n))
	default:
		h[0], hl = 0xdd, 5
		if lv.isObj {
			h[0] = 0xdf
		}
		binary.BigEndian.PutUint32(h[1:], uint32(n))
	}
	if extra := hl - 1; extra > 0 {
		end := len(p.out)
		p.out = append(p.out, h[:extra]...)
		copy(p.out[lv.hdr+hl:], p.out[lv.hdr+1:end])
	}
	copy(p.out[lv.hdr:], h[:hl])
}

func (p *jsonParser) literal(word string, code byte) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return p.errorf("invalid literal")
	}
	p.i += len(word)
	p.out = append(p.out, code)
	return nil
}

func (p *jsonParser) number() error {
	start := p.i
	b := p.b
	neg := false
	if b[p.i] == '-' {
		neg = true
		p.i++
	}
	if p.i == len(b) || b[p.i] < '0' || b[p.i] > '9' {
		return p.errorf("invalid number")
	}
	integral := true
	var u uint64
	overflow := false
	if b[p.i] == '0' {
		p.i++
	} else {
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			d := uint64(b[p.i] - '0')
			if u > (math.MaxUint64-d)/10 {
				overflow = true
			} else {
				u = u*10 + d
			}
			p.i++
		}
	}
	if p.i < len(b) && b[p.i] == '.' {
		integral = false
		p.i++
		if p.i == len(b) || b[p.i] < '0' || b[p.i] > '9' {
			return p.errorf("invalid number")
		}
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		integral = false
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if p.i == len(b) || b[p.i] < '0' || b[p.i] > '9' {
			return p.errorf("invalid number")
		}
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	}
	if integral && !overflow {
		switch {
		case !neg:
			p.out = appendUint(p.out, u)
			return nil
		case u <= 1<<63:
			p.out = appendInt(p.out, int64(-u))
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(b[start:p.i]), 64)
	if err != nil {
		p.i = start
		return p.errorf("number out of range")
	}
	p.out = append(p.out, 0xcb)
	p.out = binary.BigEndian.AppendUint64(p.out, math.Float64bits(f))
	return nil
}

// appendUint appends u in its most compact msgpack encoding.
func appendUint(dst []byte, u uint64) []byte {
	switch {
	case u <= 0x7f:
		return append(dst, byte(u))
	case u <= math.MaxUint8:
		return append(dst, 0xcc, byte(u))
	case u <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), u)
}

// appendInt appends i in its most compact msgpack encoding.
func appendInt(dst []byte, i int64) []byte {
	switch {
	case i >= 0:
		return appendUint(dst, uint64(i))
	case i >= -32:
		return append(dst, byte(int8(i)))
	case i >= math.MinInt8:
		return append(dst, 0xd0, byte(int8(i)))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(int16(i)))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(int32(i)))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(i))
}

// appendStrHeader appends the msgpack header of a str of n bytes.
func appendStrHeader(dst []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
}

// str reads a JSON string at p.i and appends it as a msgpack str.
func (p *jsonParser) str() error {
	p.i++ // opening quote
	start := p.i
	plain := true // no escapes and valid UTF-8: copied as is
	b := p.b
	for {
		if p.i == len(b) {
			return p.errorf("unterminated string")
		}
		c := b[p.i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return p.errorf("control character in string")
		}
		if c == '\\' {
			plain = false
			p.i++
			if p.i == len(b) {
				return p.errorf("unterminated string")
			}
			switch b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if _, ok := hex4(b[p.i+1:]); !ok {
					return p.errorf("invalid \\u escape")
				}
				p.i += 5
			default:
				return p.errorf("invalid escape")
			}
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(b[p.i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			p.i += size
			continue
		}
		p.i++
	}
	raw := b[start:p.i]
	p.i++ // closing quote
	if plain {
		p.out = appendStrHeader(p.out, len(raw))
		p.out = append(p.out, raw...)
		return nil
	}
	s := p.scratch[:0]
	for j := 0; j < len(raw); {
		c := raw[j]
		switch {
		case c == '\\':
			j++
			switch raw[j] {
			case 'b':
				s = append(s, '\b')
			case 'f':
				s = append(s, '\f')
			case 'n':
				s = append(s, '\n')
			case 'r':
				s = append(s, '\r')
			case 't':
				s = append(s, '\t')
			case 'u':
				r1, _ := hex4(raw[j+1:])
				j += 5
				r := rune(r1)
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
					if len(raw)-j >= 6 && raw[j] == '\\' && raw[j+1] == 'u' {
						if r2, ok := hex4(raw[j+2:]); ok {
							if dec := utf16.DecodeRune(rune(r1), rune(r2)); dec != utf8.RuneError {
								r = dec
								j += 6
							}
						}
					}
				}
				s = utf8.AppendRune(s, r)
				continue
			default: // " \ /
				s = append(s, raw[j])
			}
			j++
		case c < utf8.RuneSelf:
			s = append(s, c)
			j++
		default:
			r, size := utf8.DecodeRune(raw[j:])
			if r == utf8.RuneError && size == 1 {
				s = append(s, "\uFFFD"...)
			} else {
				s = append(s, raw[j:j+size]...)
			}
			j += size
		}
	}
	p.scratch = s
	p.out = appendStrHeader(p.out, len(s))
	p.out = append(p.out, s...)
	return nil
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (uint16, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}
