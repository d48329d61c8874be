package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sseConn is one SSE observer of a room (PROTOCOL §3): GET
// /v1/rooms/{room}/events, read as a stream of events whose message data is
// the JSON {room, seq, user, conn, data, ts}, data being the payload with
// msgpack bin turned into base64.
//
// A polled observer (plain http, on Linux) opens the stream on a socket of
// its own and is read by a poller, which hands feed what each read returns;
// the others go through net/http and a reader goroutine. Both parse the
// event stream with the same code (text, field, dispatch).
type sseConn struct {
	r    *runner
	idx  int
	url  string
	room *roomState
	tr   *tracker

	body io.ReadCloser // the goroutine path: net/http's response body

	polled  bool
	nc      net.Conn // the polled path's socket, until a poller takes it
	fd      int      // the socket a poller reads (poll_linux.go)
	chunked bool     // the body is still in chunked coding: ch undoes it
	ch      chunkReader

	line    []byte // the start of a line whose end has not arrived
	event   []byte
	data    []byte
	hasData bool
	got     bool // a snapshot or a message arrived: the stream is live
	byeCode int
}

func (r *runner) sseClient() *http.Client {
	d := &net.Dialer{Timeout: r.cfg.DialTimeout}
	return &http.Client{Transport: &http.Transport{
		DialContext:           d.DialContext,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   -1,
		ResponseHeaderTimeout: r.cfg.DialTimeout,
		ForceAttemptHTTP2:     false,
		TLSClientConfig:       r.tlsConfig(),
	}}
}

// sseURL is the events URL of a room on the node at base.
func sseURL(base, room string) string {
	return httpBase(base) + "/v1/rooms/" + url.PathEscape(room) + "/events"
}

var errNoSSE = errors.New("bench: the server has no SSE endpoint (404)")

// open subscribes and waits for the stream's first event (the snapshot).
func (s *sseConn) open(parent context.Context) error {
	s.byeCode = -1
	if s.polled {
		return s.openRaw(parent)
	}
	// The stream outlives the opening phase's context: teardown ends it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stopOnCancel := context.AfterFunc(parent, cancel)
	defer stopOnCancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sseURL(s.url, s.room.name), nil)
	if err != nil {
		cancel()
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.r.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.r.cfg.Token)
	}
	resp, err := s.r.sse.Do(req)
	if err != nil {
		cancel()
		s.r.errs.add("sse_" + dialErrKey(err, nil))
		return err
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return s.refused(resp.StatusCode)
	}
	s.body = &cancelBody{resp.Body, cancel}
	t := time.AfterFunc(s.r.cfg.DialTimeout, func() { _ = s.body.Close() })
	defer t.Stop()
	if err := s.awaitFirst(s.body, nil); err != nil {
		s.r.errs.add("sse_handshake:" + sseErrKey(err))
		_ = s.body.Close()
		return err
	}
	return nil
}

// openRaw opens the stream on a socket of its own, for a poller to read: the
// request open sends through net/http, written here, and its response
// parsed here.
func (s *sseConn) openRaw(ctx context.Context) error {
	u, err := url.Parse(sseURL(s.url, s.room.name))
	if err != nil {
		return err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	d := net.Dialer{Timeout: s.r.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		s.r.errs.add("sse_" + dialErrKey(err, nil))
		return err
	}
	s.nc = nc
	// The opening phase's end interrupts the reads below; the stream itself
	// outlives it (teardown ends it).
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// Errors are keyed as open's: the request's as a dial's, then the wait
	// for the first event's.
	fail := func(handshake bool, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		if handshake {
			s.r.errs.add("sse_handshake:" + sseErrKey(err))
		} else {
			s.r.errs.add("sse_" + dialErrKey(err, nil))
		}
		_ = nc.Close()
		return err
	}

	_ = nc.SetDeadline(time.Now().Add(s.r.cfg.DialTimeout))
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n"
	if s.r.cfg.Token != "" {
		req += "Authorization: Bearer " + s.r.cfg.Token + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return fail(false, err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(false, err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = nc.Close()
		return s.refused(resp.StatusCode)
	}
	// net/http answers HTTP/1.1 with a chunked body; without it, the body
	// runs to the connection's end.
	s.chunked = len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
	ahead, _ := br.Peek(br.Buffered()) // body bytes read with the header

	_ = nc.SetDeadline(time.Now().Add(s.r.cfg.DialTimeout))
	if err := s.awaitFirst(nc, ahead); err != nil {
		return fail(true, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nil
}

// refused counts a stream the server answered with an HTTP error.
func (s *sseConn) refused(status int) error {
	s.r.errs.add("sse:http_" + strconv.Itoa(status))
	if status == http.StatusNotFound {
		return errNoSSE
	}
	return fmt.Errorf("bench: SSE answered HTTP %d", status)
}

// awaitFirst handles ahead, then reads rd until the stream's first snapshot
// or message event, which proves it live.
func (s *sseConn) awaitFirst(rd io.Reader, ahead []byte) error {
	err := s.feed(ahead, now())
	buf := make([]byte, 4096)
	for !s.got && err == nil {
		var n int
		n, err = rd.Read(buf)
		if n > 0 {
			if ferr := s.feed(buf[:n], now()); ferr != nil {
				err = ferr
			}
		}
	}
	if s.got {
		return nil // an end read along with it is met again by the reader
	}
	return err
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.ReadCloser.Close()
}

// feed handles body bytes as a read returned them (chunked when s.chunked:
// partial chunk framing and lines carry over to the next call). io.EOF: the
// last chunk arrived, now or before.
func (s *sseConn) feed(b []byte, recvNS int64) error {
	if !s.chunked {
		s.text(b, recvNS)
		return nil
	}
	for {
		data, rest, err := s.ch.next(b)
		s.text(data, recvNS)
		if err != nil || len(rest) == 0 {
			return err
		}
		b = rest
	}
}

// text handles event-stream text: every whole line in b, the start of an
// unfinished one kept in s.line until its end arrives.
func (s *sseConn) text(b []byte, recvNS int64) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.line = append(s.line, b...)
			return
		}
		line := b[:i]
		b = b[i+1:]
		if len(s.line) > 0 {
			s.line = append(s.line, line...)
			line = s.line
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		s.field(line, recvNS)
		s.line = s.line[:0]
	}
}

// field handles one line of the stream. A blank line ends an event, named
// "message" when it has no event field. Comments and fields other than
// event and data are skipped.
func (s *sseConn) field(line []byte, recvNS int64) {
	if len(line) == 0 {
		if s.hasData || len(s.event) > 0 {
			if len(s.event) == 0 {
				s.event = append(s.event, "message"...)
			}
			if s.dispatch(s.event, recvNS) {
				s.got = true
			}
		}
		s.event, s.data, s.hasData = s.event[:0], s.data[:0], false
		return
	}
	if line[0] == ':' {
		return
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		s.event = append(s.event[:0], value...)
	case "data":
		if s.hasData {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.hasData = true
	}
}

// dispatch handles one event, its data in s.data; it reports whether it was
// a snapshot or a message (what proves the stream is live).
func (s *sseConn) dispatch(ev []byte, recvNS int64) bool {
	switch string(ev) {
	case "message":
		seq, st, ok := parseSSEMessage(s.data)
		s.tr.onMsg(s.r, seq, st, ok, recvNS)
		return true
	case "snapshot":
		var snap struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(s.data, &snap); err != nil {
			s.r.errs.add("sse:bad_snapshot")
		}
		s.tr.lastSeq = snap.Seq
		return true
	case "bye":
		var bye struct {
			Code int `json:"code"`
		}
		_ = json.Unmarshal(s.data, &bye)
		s.byeCode = bye.Code
		s.r.errs.add("sse_bye:" + codeName(bye.Code))
	}
	return false
}

// readLoop reads a net/http stream until it ends.
func (s *sseConn) readLoop() {
	defer s.r.readers.Done()
	buf := make([]byte, 8192)
	for {
		n, err := s.body.Read(buf)
		if n > 0 {
			s.text(buf[:n], now())
		}
		if err != nil {
			s.ended(err)
			return
		}
	}
}

// ended records why the stream ended, unless the bench ended it or a bye
// told already.
func (s *sseConn) ended(err error) {
	if s.r.stopping.Load() {
		return
	}
	s.tr.dead.Store(true)
	if s.byeCode < 0 {
		s.r.errs.add("sse:" + sseErrKey(err))
	}
}

func (s *sseConn) netConn() net.Conn { return s.nc }

func (s *sseConn) setFD(fd int) { s.fd = fd }

func (s *sseConn) close() {
	switch {
	case s.fd > 0:
		closeRaw(s.fd) // a polled stream: its Go conn is closed already
		s.fd = -1
	case s.nc != nil:
		_ = s.nc.Close()
	case s.body != nil:
		_ = s.body.Close()
	}
}

func sseErrKey(err error) string {
	k := readErrKey(err, -1)
	if i := strings.IndexByte(k, ':'); i >= 0 {
		k = k[i+1:]
	}
	if k == "" || k == "other" {
		k = "read_error"
	}
	return k
}

// parseSSEMessage finds seq and the payload's stamp in a message event's
// JSON without decoding all of it: the bench payload is a msgpack bin, so
// its data is a base64 string, whose first 24 characters hold the stamp.
func parseSSEMessage(js []byte) (seq uint64, st stamp, ok bool) {
	if i := bytes.Index(js, []byte(`"seq":`)); i >= 0 {
		p := js[i+6:]
		for len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		for len(p) > 0 && p[0] >= '0' && p[0] <= '9' {
			seq = seq*10 + uint64(p[0]-'0')
			p = p[1:]
		}
	}
	i := bytes.Index(js, []byte(`"data":`))
	if i < 0 {
		return seq, st, false
	}
	p := js[i+7:]
	for len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	const enc = (payloadBody + 2) / 3 * 4
	if len(p) < 1+enc || p[0] != '"' {
		return seq, st, false
	}
	var raw [enc / 4 * 3]byte
	if _, err := base64.StdEncoding.Decode(raw[:], p[1:1+enc]); err != nil {
		if _, err := base64.URLEncoding.Decode(raw[:], p[1:1+enc]); err != nil {
			return seq, st, false
		}
	}
	st, ok = readStamp(raw[:])
	return seq, st, ok
}
