package bench

import (
	"errors"
	"io"
)

// chunkReader undoes HTTP/1.1's chunked transfer coding (RFC 9112 §7.1)
// incrementally: a poller hands it whatever one read returned, so a chunk's
// size line, its data and the CRLF after it may each be split anywhere.
type chunkReader struct {
	state  uint8
	size   uint64 // the size being read, then the chunk's data bytes left
	digits int    // hex digits of the size read so far
	line   int    // bytes of the trailer line read so far
}

const (
	chunkSize    = iota // the size's hex digits
	chunkExt            // the rest of the size line: extensions, CR
	chunkData           // the chunk's data
	chunkDataCR         // the CRLF after it
	chunkDataLF         // its LF
	chunkTrailer        // trailer fields after the last chunk, up to a blank line
	chunkDone
)

var errChunked = errors.New("bench: bad chunked encoding")

// next returns the chunk data at the start of b, after any framing there,
// and the bytes that follow it. err is io.EOF once the last chunk and its
// trailer have been read.
func (c *chunkReader) next(b []byte) (data, rest []byte, err error) {
	for len(b) > 0 {
		ch := b[0]
		switch c.state {
		case chunkSize:
			switch {
			case '0' <= ch && ch <= '9', 'a' <= ch && ch <= 'f', 'A' <= ch && ch <= 'F':
				if c.digits == 15 { // no chunk is this big
					return nil, nil, errChunked
				}
				c.size = c.size<<4 | uint64(unhex(ch))
				c.digits++
			case c.digits == 0:
				return nil, nil, errChunked
			case ch == '\n':
				c.sizeRead()
			case ch == ';' || ch == ' ' || ch == '\t' || ch == '\r':
				c.state = chunkExt
			default:
				return nil, nil, errChunked
			}
		case chunkExt:
			if ch == '\n' {
				c.sizeRead()
			}
		case chunkData:
			n := min(uint64(len(b)), c.size)
			c.size -= n
			if c.size == 0 {
				c.state = chunkDataCR
			}
			return b[:n], b[n:], nil
		case chunkDataCR:
			if ch != '\r' {
				return nil, nil, errChunked
			}
			c.state = chunkDataLF
		case chunkDataLF:
			if ch != '\n' {
				return nil, nil, errChunked
			}
			c.state, c.size, c.digits = chunkSize, 0, 0
		case chunkTrailer:
			switch {
			case ch == '\n' && c.line == 0:
				c.state = chunkDone
			case ch == '\n':
				c.line = 0
			case ch != '\r':
				c.line++
			}
		case chunkDone:
			return nil, b, io.EOF
		}
		b = b[1:]
	}
	if c.state == chunkDone {
		return nil, nil, io.EOF
	}
	return nil, nil, nil
}

// sizeRead ends a size line: the data follows, or for size 0 the trailer.
func (c *chunkReader) sizeRead() {
	if c.size == 0 {
		c.state, c.line = chunkTrailer, 0
	} else {
		c.state = chunkData
	}
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
