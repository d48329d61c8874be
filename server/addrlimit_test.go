package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/room"
)

// dialFrom connects from a loopback source address of its own (127.0.0.2
// and up reach a server on 127.0.0.1), with optional headers.
func (ts *testServer) dialFrom(t *testing.T, src string, hdr http.Header) (*client.Conn, *http.Response, error) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, resp, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{NetDialContext: d.DialContext, Header: hdr})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

// flood opens n connections that never speak from src and returns how many
// the server upgraded; every refusal must be HTTP 429.
func flood(t *testing.T, ts *testServer, src string, hdr func(i int) http.Header, n int) int {
	t.Helper()
	upgraded := 0
	for i := range n {
		var h http.Header
		if hdr != nil {
			h = hdr(i)
		}
		_, resp, err := ts.dialFrom(t, src, h)
		switch {
		case err == nil:
			upgraded++
		case resp == nil || resp.StatusCode != http.StatusTooManyRequests:
			t.Fatalf("flood connection %d: %v %v, want HTTP 429", i, err, resp)
		}
	}
	return upgraded
}

// served checks that n clients from src (with headers hdr) get a welcome.
func served(t *testing.T, ts *testServer, src string, hdr http.Header, n int) {
	t.Helper()
	for i := range n {
		c, resp, err := ts.dialFrom(t, src, hdr)
		if err != nil {
			t.Fatalf("client %d from %s: %v %v", i, src, err, resp)
		}
		if err := c.Hello(testCtx(t), "", nil); err != nil {
			t.Fatalf("client %d from %s: hello: %v", i, src, err)
		}
	}
}

func TestAddressFloodKeepsOthersServed(t *testing.T) {
	t.Run("pending per address", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *room.Config) {
			c.MaxPending = 16
			c.MaxPendingPerAddr = 4
			c.ConnRatePerAddr = 1000
		})
		if n := flood(t, ts, "127.0.0.1", nil, 40); n != 4 {
			t.Fatalf("flooder got %d connections waiting for hello, want 4", n)
		}
		served(t, ts, "127.0.0.2", nil, 8)
	})
	t.Run("new connections per address", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *room.Config) {
			c.ConnRatePerAddr = 0.01
			c.ConnBurstPerAddr = 3
		})
		served(t, ts, "127.0.0.1", nil, 3)
		if _, resp, err := ts.dialFrom(t, "127.0.0.1", nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("fourth connection in the burst: %v %v, want HTTP 429", err, resp)
		}
		served(t, ts, "127.0.0.2", nil, 3)
		// An SSE stream over the rate is a passing condition: bye 5.
		hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).DialContext}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(ts.URL + "/v1/rooms/a/events")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "event: bye") || !strings.Contains(string(body), `"code":5`) {
			t.Fatalf("SSE over the address's rate: %d %q, want a stream ending with bye 5", resp.StatusCode, body)
		}
	})
	t.Run("forwarded for, from trusted proxies only", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config, _ *room.Config) {
			c.MaxPending = 16
			c.MaxPendingPerAddr = 4
			c.ConnRatePerAddr = 1000
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
		// Behind the proxy, one client address floods: 4 of 40 get in.
		if n := flood(t, ts, "127.0.0.1", func(int) http.Header { return xff("203.0.113.7") }, 40); n != 4 {
			t.Fatalf("flooder behind the proxy got %d, want 4", n)
		}
		// Other clients of the same proxy are served, by either header;
		// a spoofed left-most entry does not matter.
		served(t, ts, "127.0.0.1", xff("198.51.100.1"), 4)
		served(t, ts, "127.0.0.1", xff("203.0.113.7, 198.51.100.2"), 4)
		served(t, ts, "127.0.0.1", http.Header{"Forwarded": {`for="[2001:db8::1]:4711"`}}, 4)
		// An untrusted peer's header is ignored: varying it gains nothing.
		n := flood(t, ts, "127.0.0.3", func(i int) http.Header { return xff(fmt.Sprintf("192.0.2.%d", i+1)) }, 20)
		if n != 4 {
			t.Fatalf("untrusted peer with varying X-Forwarded-For got %d, want 4", n)
		}
	})
}

func TestClientAddr(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}}
	for _, tc := range []struct {
		remote, xff, fwd, want string
	}{
		{"192.0.2.1:5000", "", "", "192.0.2.1"},
		{"192.0.2.1:5000", "198.51.100.9", "", "192.0.2.1"}, // untrusted peer
		{"10.1.2.3:5000", "198.51.100.9", "", "198.51.100.9"},
		{"10.1.2.3:5000", "198.51.100.9, 10.9.9.9", "", "198.51.100.9"},
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.9", "", "198.51.100.9"},
		{"10.1.2.3:5000", "garbage", "", "10.1.2.3"},
		{"10.1.2.3:5000", "", "for=198.51.100.7;proto=https", "198.51.100.7"},
		{"10.1.2.3:5000", "", `for="[2001:db8:1:2:3::4]:80"`, "2001:db8:1:2::"},
		{"[2001:db8:1:2:aaaa::1]:443", "", "", "2001:db8:1:2::"},
		{"[::ffff:192.0.2.5]:443", "", "", "192.0.2.5"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.fwd != "" {
			r.Header.Set("Forwarded", tc.fwd)
		}
		if got := s.clientAddr(r); got.String() != tc.want {
			t.Errorf("%s xff=%q fwd=%q: %s, want %s", tc.remote, tc.xff, tc.fwd, got, tc.want)
		}
	}
}
