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
type sseConn struct {
	r    *runner
	idx  int
	url  string
	room *roomState
	tr   *tracker

	body io.ReadCloser
	br   *bufio.Reader

	line    []byte // scratch for lines longer than br's buffer
	event   []byte
	data    []byte
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
		s.r.errs.add("sse:http_" + strconv.Itoa(resp.StatusCode))
		if resp.StatusCode == http.StatusNotFound {
			return errNoSSE
		}
		return fmt.Errorf("bench: SSE answered HTTP %d", resp.StatusCode)
	}
	s.body = &cancelBody{resp.Body, cancel}
	s.br = bufio.NewReaderSize(s.body, 8192)
	t := time.AfterFunc(s.r.cfg.DialTimeout, func() { _ = s.body.Close() })
	defer t.Stop()
	got := false
	for !got {
		ev, err := s.next()
		if err != nil {
			s.r.errs.add("sse_handshake:" + sseErrKey(err))
			_ = s.body.Close()
			return err
		}
		got = s.dispatch(ev, now())
	}
	return nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.ReadCloser.Close()
}

// next reads the next event and returns its name ("message" when unnamed),
// with its data in s.data. Comments and fields other than event and data are
// skipped.
func (s *sseConn) next() ([]byte, error) {
	s.event = s.event[:0]
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			if !hasData && len(s.event) == 0 {
				continue
			}
			if len(s.event) == 0 {
				s.event = append(s.event, "message"...)
			}
			return s.event, nil
		}
		if line[0] == ':' {
			continue
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
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
		}
	}
}

// readLine returns the next line without its end of line. The slice is
// valid until the next call.
func (s *sseConn) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.br.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// dispatch handles one event; it reports whether it was a snapshot or a
// message (what proves the stream is live).
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

// readLoop runs until the stream ends.
func (s *sseConn) readLoop() {
	defer s.r.readers.Done()
	for {
		ev, err := s.next()
		if err != nil {
			if !s.r.stopping.Load() {
				s.tr.dead.Store(true)
				if s.byeCode < 0 {
					s.r.errs.add("sse:" + sseErrKey(err))
				}
			}
			return
		}
		s.dispatch(ev, now())
	}
}

func (s *sseConn) close() {
	if s.body != nil {
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
