package wsframe

import (
	"encoding/binary"
	"math/rand/v2"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode byte

// The opcodes.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// Header bits and lengths.
const (
	finBit  = 0x80
	maskBit = 0x80

	// MaxHeader is the longest frame header: 2 bytes, an 8-byte length
	// and a 4-byte mask key.
	MaxHeader = 14
	// MaxControlPayload is the most a control frame carries (§5.5).
	MaxControlPayload = 125
)

// IsControl reports whether op is a control frame's opcode.
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// AppendHeader appends the header of an unmasked final frame of n payload
// bytes: what a server writes.
func AppendHeader(dst []byte, op Opcode, n int) []byte {
	b0 := finBit | byte(op)
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(n))
}

// AppendMaskedHeader appends the header of a masked final frame of n
// payload bytes with mask key (what a client writes); the payload must be
// masked with the same key (Mask).
func AppendMaskedHeader(dst []byte, op Opcode, n int, key [4]byte) []byte {
	start := len(dst)
	dst = AppendHeader(dst, op, n)
	dst[start+1] |= maskBit
	return append(dst, key[:]...)
}

// AppendMasked appends a masked final frame of payload with mask key (what
// a client writes): the header, then payload masked (payload itself is left
// as it is).
func AppendMasked(dst []byte, op Opcode, payload []byte, key [4]byte) []byte {
	dst = AppendMaskedHeader(dst, op, len(payload), key)
	start := len(dst)
	dst = append(dst, payload...)
	Mask(key, dst[start:])
	return dst
}

// NewMaskKey returns a mask key from the runtime's ChaCha8 generator,
// which is seeded from the system's entropy (§5.3 asks for a key the
// peer's applications cannot predict).
func NewMaskKey() [4]byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return k
}

// Mask masks (or unmasks) b in place with key, b being the payload from
// its first byte.
func Mask(key [4]byte, b []byte) {
	k8 := uint64(binary.LittleEndian.Uint32(key[:]))
	k8 |= k8 << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k8)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}

// Close status codes of §7.4.1 that roomd writes itself.
const (
	CloseNormal        = 1000
	CloseNoStatus      = 1005 // never on the wire: a close frame without a code
	CloseProtocolError = 1002
)

// CloseBody is the payload of a close frame: the code, then text cut to
// fit a control frame. Code CloseNoStatus gives an empty body.
func CloseBody(code int, text string) []byte {
	if code == CloseNoStatus {
		return nil
	}
	if len(text) > MaxControlPayload-2 {
		text = text[:MaxControlPayload-2]
	}
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(text)), uint16(code)), text...)
}

// AppendControl appends a complete unmasked control frame (payload cut at
// MaxControlPayload).
func AppendControl(dst []byte, op Opcode, payload []byte) []byte {
	if len(payload) > MaxControlPayload {
		payload = payload[:MaxControlPayload]
	}
	return append(AppendHeader(dst, op, len(payload)), payload...)
}

// MaskedControl returns the opcode and length of the complete masked ping
// or pong that b starts with (what a client sends), or 0, 0 when b does not
// start with one, or not a complete one yet. Its payload is b[n-len:n],
// masked with b[2:6].
func MaskedControl(b []byte) (op Opcode, n int) {
	if len(b) < 6 || b[1]&maskBit == 0 || (b[0] != finBit|byte(OpPing) && b[0] != finBit|byte(OpPong)) {
		return 0, 0
	}
	size := int(b[1] &^ maskBit)
	if size > MaxControlPayload || len(b) < 6+size {
		return 0, 0
	}
	return Opcode(b[0] &^ finBit), 6 + size
}

// MaskedPongLen returns the length of the complete masked pong that b
// starts with (what a client answers a ping with), or 0 when b does not
// start with one, or not a complete one yet.
func MaskedPongLen(b []byte) int {
	if op, n := MaskedControl(b); op == OpPong {
		return n
	}
	return 0
}

// WholeMessage reports whether b begins with a whole one-frame message,
// header and payload (a final frame): reading it takes nothing more off the
// connection. A frame whose length is not yet known, a fragment, or a
// length past what b holds gives false.
func WholeMessage(b []byte) bool {
	if len(b) < 2 || b[0]&finBit == 0 {
		return false
	}
	h, n := 2, uint64(b[1]&^maskBit)
	switch n {
	case 126:
		if len(b) < 4 {
			return false
		}
		h, n = 4, uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return false
		}
		h, n = 10, binary.BigEndian.Uint64(b[2:])
	}
	if b[1]&maskBit != 0 {
		h += 4
	}
	return len(b) >= h && uint64(len(b)-h) >= n
}
