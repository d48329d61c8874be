package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// trickler is a raw HTTP/1.1 client that sends a request's headers and then
// its declared body a little at a time, or not at all.
type trickler struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

func dialTrickler(t *testing.T, ts *testServer, head string) *trickler {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return &trickler{t: t, conn: conn, rd: bufio.NewReader(conn)}
}

// postHead is the head of a POST with a declared body of n bytes.
func postHead(path, key string, n int) string {
	h := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: roomd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, n)
	if key != "" {
		h += "Authorization: Bearer " + key + "\r\n"
	}
	return h + "\r\n"
}

// response reads the answer within d, and reports whether the server then
// closed the connection.
func (c *trickler) response(d time.Duration) (*http.Response, bool) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		c.t.Fatalf("no answer within %s: %v", d, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = c.rd.ReadByte()
	return resp, err == io.EOF
}

// TestAPIRefusesBeforeBody: a request without a valid key gets its 401 at
// once, with none of its declared body sent, and the connection is closed:
// a flood of such requests holds no socket. /healthz answers throughout.
func TestAPIRefusesBeforeBody(t *testing.T) {
	ts := newAuthServer(t, nil, func(c *Config) { c.APIKeys = auth.NewAPIKeys([]string{"k1"}) })
	var cs []*trickler
	for range 50 {
		// 200 KB: under the 256 KiB net/http drains by default before answering
		c := dialTrickler(t, ts, postHead("/v1/rooms/chat:a/messages", "wrong", 200_000)+`{"data":`)
		cs = append(cs, c)
	}
	for i, c := range cs {
		start := time.Now()
		resp, closed := c.response(2 * time.Second)
		if resp.StatusCode != http.StatusUnauthorized || !closed {
			t.Fatalf("request %d: %s, connection closed %v", i, resp.Status, closed)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("request %d answered after %s", i, d)
		}
	}
	healthz(t, ts)
}

// TestAPIBodyTimeout: an authorised request whose body trickles is cut with
// 408 within APIBodyTimeout (and its connection closed), while /healthz and
// a prompt request answer meanwhile.
func TestAPIBodyTimeout(t *testing.T) {
	const bound = 500 * time.Millisecond
	ts := newAuthServer(t, nil, func(c *Config) {
		c.APIKeys = auth.NewAPIKeys([]string{"k1"})
		c.APIBodyTimeout = bound
	})
	body := `{"data":"` + strings.Repeat("x", 100) + `"}`
	start := time.Now() // before the head goes: the server's bound starts after it
	c := dialTrickler(t, ts, postHead("/v1/rooms/chat:a/messages", "k1", len(body)))
	done := make(chan struct{})
	go func() { // one byte every 50 ms: the body would take 5 s
		defer close(done)
		for i := range len(body) {
			if _, err := c.conn.Write([]byte{body[i]}); err != nil {
				return
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-c.t.Context().Done():
				return
			}
		}
	}()
	healthz(t, ts)
	ts.ok(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", key: "k1", body: `{"data":1}`})
	resp, closed := c.response(5 * time.Second)
	took := time.Since(start)
	c.conn.Close()
	<-done
	if resp.StatusCode != http.StatusRequestTimeout || !closed {
		t.Fatalf("trickled body: %s, connection closed %v", resp.Status, closed)
	}
	if took < bound || took > bound+time.Second {
		t.Fatalf("trickled body cut after %s, bound %s", took, bound)
	}
	healthz(t, ts)
}

func healthz(t *testing.T, ts *testServer) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	resp, err := hc.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
}

// TestAPIRequestTimeout: a client that asks for a large answer and never
// reads it holds the request's handler no longer than APIRequestTimeout
// and WriteTimeout together; the connection is then cut.
func TestAPIRequestTimeout(t *testing.T) {
	m := newAPIMetrics()
	ts := newTestServer(t, func(c *Config, rc *room.Config) {
		c.Metrics = m
		c.APIRequestTimeout = 300 * time.Millisecond
		c.WriteTimeout = 300 * time.Millisecond
		rc.Default.StateMaxBytes = 64 << 20
	})
	value := `"` + strings.Repeat("x", 60_000) + `"`
	for i := range 300 { // 18 MB of state: more than the sockets' buffers hold
		ts.ok(t, apiReq{method: "PUT", path: fmt.Sprintf("/v1/rooms/chat:big/state/k%d", i), body: value})
	}
	c := dialTrickler(t, ts, "GET /v1/rooms/chat:big/state HTTP/1.1\r\nHost: roomd\r\n\r\n")
	const route = "GET /v1/rooms/{room}/state 200"
	checkFor(t, 5*time.Second, func() error {
		if m.count(route) == 0 {
			return fmt.Errorf("the handler still writes to a client that does not read")
		}
		return nil
	})
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || n >= 18_000_000 {
		t.Fatalf("read %d bytes (%v): the answer was not cut", n, err)
	}
	healthz(t, ts)
}
