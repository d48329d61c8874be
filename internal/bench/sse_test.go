package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// sseStreamText is an event stream with what the parser must cope with:
// CRLF and LF line ends, comments, ignored fields, an unnamed message event,
// a message whose data spans two data lines, a duplicate, one out of order,
// and a bye.
func sseStreamText(sent int64) string {
	var b strings.Builder
	b.WriteString("retry: 3000\n\n: ping\r\n\r\nevent: snapshot\ndata: {\"room\":\"r\",\"seq\":7,\"log\":[]}\n\n")
	for i, ctr := range []uint32{0, 1, 1, 3, 2} {
		body := make([]byte, 40)
		putStamp(body, stamp{phase: phaseMeasured, pub: 0, counter: ctr, sentNS: sent})
		d, _ := json.Marshal(body)
		switch i {
		case 1: // unnamed: a message
			fmt.Fprintf(&b, "id: E:%d\ndata: {\"room\":\"r\",\"seq\":%d,\"data\":%s}\n\n", 8+i, 8+i, d)
		case 2: // data over two lines, joined by a newline
			fmt.Fprintf(&b, "event: message\r\ndata: {\"room\":\"r\",\"seq\":%d,\r\ndata: \"data\":%s}\r\n\r\n", 8+i, d)
		default:
			fmt.Fprintf(&b, "id: E:%d\r\nevent: message\r\ndata: {\"room\":\"r\",\"seq\":%d,\"conn\":\"c1\",\"data\":%s,\"ts\":1}\r\n\r\n", 8+i, 8+i, d)
		}
	}
	b.WriteString(": bye next\nevent: bye\ndata: {\"code\":1,\"msg\":\"shutdown\"}\n\n")
	return b.String()
}

// chunk encodes text in chunks of varied sizes, some with extensions and
// upper-case hex, then the last chunk and a trailer.
func chunk(text string) string {
	var b strings.Builder
	sizes := []int{1, 7, 300, 2, 13, 64, 5}
	for i := 0; len(text) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(text))
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "%x\r\n", n)
		case 1:
			fmt.Fprintf(&b, "%X;ext=\"a b\"\r\n", n)
		default:
			fmt.Fprintf(&b, "%x \r\n", n)
		}
		b.WriteString(text[:n] + "\r\n")
		text = text[n:]
	}
	b.WriteString("0\r\nX-Trailer: 1\r\n\r\n")
	return b.String()
}

func newTestSSE() *sseConn {
	r := &runner{lat: NewHistogram()}
	rs := &roomState{name: "r"}
	p := &publisher{id: 0, room: rs}
	rs.pubs = []*publisher{p}
	r.pubs = []*publisher{p}
	s := &sseConn{r: r, room: rs, byeCode: -1}
	s.tr = newTracker(rs, 0)
	s.tr.init()
	return s
}

// The incremental parser (chunked coding, then the event stream) gives the
// same events however the reads split the bytes: a partial chunk size, CRLF
// or line carries over to the next read, and the end is told exactly at the
// last byte of the last chunk's trailer.
func TestSSEFeedSplits(t *testing.T) {
	sent := now() - int64(time.Millisecond)
	text := sseStreamText(sent)
	for _, chunked := range []bool{true, false} {
		stream := text
		if chunked {
			stream = chunk(text)
		}
		splits := map[string][][]byte{"whole": {[]byte(stream)}}
		var bytewise [][]byte
		for i := range len(stream) {
			bytewise = append(bytewise, []byte(stream[i:i+1]))
		}
		splits["byte by byte"] = bytewise
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 1))
			var parts [][]byte
			for rest := stream; len(rest) > 0; {
				n := min(1+rng.IntN(40), len(rest))
				parts = append(parts, []byte(rest[:n]))
				rest = rest[n:]
			}
			splits[fmt.Sprintf("random %d", seed)] = parts
		}
		for name, parts := range splits {
			t.Run(fmt.Sprintf("chunked=%v/%s", chunked, name), func(t *testing.T) {
				s := newTestSSE()
				s.chunked = chunked
				for i, part := range parts {
					// The parser may keep no reference to a read's buffer.
					buf := append([]byte(nil), part...)
					err := s.feed(buf, now())
					clear(buf)
					last := i == len(parts)-1
					switch {
					case chunked && last && err != io.EOF:
						t.Fatalf("read %d of %d (the last): %v, want io.EOF", i, len(parts), err)
					case (!chunked || !last) && err != nil:
						t.Fatalf("read %d of %d: %v", i, len(parts), err)
					}
				}
				tr := s.tr
				if !s.got || tr.lastSeq != 12 || tr.uniq.Load() != 4 || tr.all.Load() != 5 || tr.dups != 1 || tr.ooo != 1 || tr.seqRegress != 0 || tr.foreign != 0 {
					t.Errorf("got %v last seq %d uniq %d all %d dups %d ooo %d regress %d foreign %d",
						s.got, tr.lastSeq, tr.uniq.Load(), tr.all.Load(), tr.dups, tr.ooo, tr.seqRegress, tr.foreign)
				}
				if s.byeCode != 1 || len(s.line) != 0 {
					t.Errorf("bye code %d, %d bytes of a line left", s.byeCode, len(s.line))
				}
				if got, want := s.r.errs.snapshot(), map[string]int64{"sse_bye:shutdown": 1}; !maps.Equal(got, want) {
					t.Errorf("errors %v, want %v", got, want)
				}
				if snap := s.r.lat.Snapshot(); snap.Count != 4 || snap.P50 < time.Millisecond {
					t.Errorf("latency %+v", snap)
				}
				if chunked {
					if err := s.feed(nil, now()); err != io.EOF {
						t.Errorf("after the end: %v, want io.EOF", err)
					}
				}
			})
		}
	}
}

// The snapshot alone sets the last seq.
func TestSSEFeedSnapshot(t *testing.T) {
	s := newTestSSE()
	s.chunked = true
	in := chunk("event: snapshot\ndata: {\"seq\":41}\n\n")
	if err := s.feed([]byte(in[:len(in)-5]), now()); err != nil || !s.got || s.tr.lastSeq != 41 {
		t.Errorf("err %v, got %v, last seq %d", err, s.got, s.tr.lastSeq)
	}
}

func TestChunkReaderErrors(t *testing.T) {
	for _, in := range []string{
		"zz\r\n",                    // not hex
		"\r\n",                      // no size
		";x\r\n",                    // an extension without a size
		"5\r\nhelloXX",              // no CRLF after the data
		"5\r\nhello\rX",             // CR without LF
		"10000000000000000\r\n",     // too big
		"3\r\nabc\r\n2\r\nde\n\r\n", // LF alone after data
	} {
		var c chunkReader
		b := []byte(in)
		var err error
		for len(b) > 0 && err == nil {
			_, b, err = c.next(b)
		}
		if !errors.Is(err, errChunked) {
			t.Errorf("%q: %v, want errChunked", in, err)
		}
	}
}
