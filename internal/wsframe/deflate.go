package wsframe

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"
)

// permessage-deflate without context takeover (RFC 7692 §7.2): each
// message body is a DEFLATE stream of its own, written with a sync flush
// whose empty stored block (00 00 ff ff) is left off the wire, and marked
// by RSV1 on its first frame. Control frames are never compressed.
//
// A server may build one message body from several pieces: Deflate's
// output and AppendStored's stored blocks, each ending on a byte boundary
// and none final, concatenate into one stream, so a piece compressed once
// is shared by every connection it goes to.

// ErrInflatedTooLarge: a compressed message inflated past the Reader's
// bound (a decompression bomb, or just a large message). It is also
// ErrTooLarge. The message was read to its end and discarded.
var ErrInflatedTooLarge = wrapTooLarge("after inflation")

type tooLargeError struct{ what string }

func (e *tooLargeError) Error() string { return ErrTooLarge.Error() + " " + e.what }
func (e *tooLargeError) Unwrap() error { return ErrTooLarge }

func wrapTooLarge(what string) error { return &tooLargeError{what} }

const rsv1Bit = 0x40

// DeflateLevel is the compress/flate level of Deflate. On chat-sized
// frames (100 to 500 bytes) the higher levels compress no better and cost
// two to three times as much (docs/BENCHMARKS.md).
const DeflateLevel = flate.BestSpeed

// syncTail is the empty stored block a sync flush ends with, which the
// sender strips from a message and the receiver appends (§7.2.1, §7.2.2).
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is what the inflater appends to a message: the sync flush's
// empty block, and a final empty block, so the stream ends cleanly.
var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// AppendDeflatedHeader appends the header of an unmasked final frame of n
// payload bytes with RSV1 set: the first frame of a compressed message.
func AppendDeflatedHeader(dst []byte, op Opcode, n int) []byte {
	dst = AppendHeader(dst, op, n)
	dst[len(dst)-headerLen(n)] |= rsv1Bit
	return dst
}

// headerLen is the length of an unmasked header for n payload bytes.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// deflater is a pooled compressor and the buffer it writes to.
type deflater struct {
	fw  *flate.Writer
	out bytes.Buffer
}

var deflaters = sync.Pool{New: func() any {
	d := new(deflater)
	d.fw, _ = flate.NewWriter(&d.out, DeflateLevel) // the level is valid
	return d
}}

// Deflate returns p compressed on its own, ending with a sync flush
// (00 00 ff ff included): a piece of a message body, in a new slice of
// its own length.
func Deflate(p []byte) []byte {
	d := deflaters.Get().(*deflater)
	d.out.Reset()
	d.fw.Reset(&d.out)
	_, _ = d.fw.Write(p) // a bytes.Buffer does not fail
	_ = d.fw.Flush()
	z := bytes.Clone(d.out.Bytes())
	if d.out.Cap() > 64<<10 {
		d.out = bytes.Buffer{} // a large message's buffer does not stay in the pool
	}
	deflaters.Put(d)
	return z
}

// TrimSyncTail removes the sync flush's empty block from the end of a
// message body that is one piece from Deflate, as the sender does
// (§7.2.1).
func TrimSyncTail(b []byte) []byte { return b[:len(b)-len(syncTail)] }

// Body gathers a compressed message body from pieces: Deflate's, shared,
// and stored (uncompressed) ones for frames not worth compressing. B is
// the body so far; Done returns it ready for the wire.
type Body struct {
	B      []byte
	stored bool // B ends with a stored block of data, not a sync flush
}

// Deflated appends a piece from Deflate.
func (b *Body) Deflated(z []byte) {
	b.B = append(b.B, z...)
	b.stored = false
}

// Stored appends p as uncompressed, non-final DEFLATE blocks.
func (b *Body) Stored(p []byte) {
	for len(p) > 0 {
		n := min(len(p), 0xFFFF)
		b.B = append(b.B, 0x00, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		b.B = append(b.B, p[:n]...)
		p = p[n:]
		b.stored = true
	}
}

// Done ends the body as §7.2.1 says: it must end with an empty stored
// block, of which the last 4 bytes (00 00 ff ff) are left off. A body
// ending with Deflate's sync flush has one; after a stored block of data
// its first byte (the block's header) stays, and so it does for a body
// of no piece.
func (b *Body) Done() []byte {
	switch {
	case b.stored || len(b.B) == 0:
		return append(b.B, 0x00)
	case len(b.B) >= len(syncTail):
		return TrimSyncTail(b.B)
	}
	return b.B
}

// inflater is a pooled decompressor and the compressed message it reads.
type inflater struct {
	z  bytes.Buffer
	zr bytes.Reader
	fr io.ReadCloser
}

var inflaters = sync.Pool{New: func() any { return new(inflater) }}

func getInflater() *inflater { return inflaters.Get().(*inflater) }

func (f *inflater) put() {
	f.z.Reset()
	if f.z.Cap() > 64<<10 {
		f.z = bytes.Buffer{}
	}
	f.zr.Reset(nil)
	inflaters.Put(f)
}

// inflate appends to dst the message f.z holds compressed, at most limit
// bytes of it (limit > 0); beyond, dst is left as it was and
// ErrInflatedTooLarge returned. Data that is not DEFLATE is a
// ProtocolError.
func (f *inflater) inflate(dst *bytes.Buffer, limit int) error {
	f.z.Write(inflateTail)
	f.zr.Reset(f.z.Bytes())
	if f.fr == nil {
		f.fr = flate.NewReader(&f.zr)
	} else if err := f.fr.(flate.Resetter).Reset(&f.zr, nil); err != nil {
		return err
	}
	base := dst.Len()
	var src io.Reader = f.fr
	if limit > 0 {
		src = io.LimitReader(f.fr, int64(limit)+1)
	}
	n, err := dst.ReadFrom(src)
	switch {
	case err != nil:
		dst.Truncate(base)
		var ce flate.CorruptInputError
		if errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) {
			return protocolErr("invalid compressed data")
		}
		return protocolErr("invalid compressed data: %v", err)
	case limit > 0 && n > int64(limit):
		dst.Truncate(base)
		return ErrInflatedTooLarge
	}
	return nil
}

// Inflate appends to dst the message body z (as read from the wire,
// without its sync tail) inflated, at most limit bytes of it (limit > 0;
// beyond: ErrInflatedTooLarge and dst as it was). A client reading a
// server's compressed messages uses it.
func Inflate(dst *bytes.Buffer, z []byte, limit int) error {
	f := getInflater()
	defer f.put()
	f.z.Write(z)
	return f.inflate(dst, limit)
}
