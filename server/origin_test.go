package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/roomd/roomd/room"
)

// TestOriginExact: an allowed origin is one whose scheme, host and port all
// equal a listed one's (default ports filled in); userinfo, another scheme
// or another port is refused, on the API, SSE and the WebSocket upgrade.
func TestOriginExact(t *testing.T) {
	ts := newAuthServer(t, nil, func(c *Config) {
		c.AllowedOrigins = []string{"https://app.example.com", "http://dev.example.com:8080"}
	})
	for origin, want := range map[string]bool{
		"https://app.example.com":              true,
		"HTTPS://APP.example.com":              true,
		"https://app.example.com:443":          true,
		"http://dev.example.com:8080":          true,
		"http://app.example.com":               false, // scheme
		"https://app.example.com:8443":         false, // port
		"https://evil@app.example.com":         false, // userinfo
		"https://app.example.com@evil.com":     false,
		"https://app.example.com.evil.com":     false,
		"https://app.example.com/path":         false,
		"http://dev.example.com":               false, // port 80, not 8080
		"ftp://app.example.com":                false,
		"null":                                 false,
		"https://app.example.com?x":            false,
		"https://user:pw@dev.example.com:8080": false,
	} {
		if got := originStatus(t, ts.URL, ts.http.Client(), origin); (got == http.StatusForbidden) == want {
			t.Errorf("Origin %q: HTTP %d on the upgrade, want allowed=%v", origin, got, want)
		}
		r := ts.api(t, apiReq{method: "OPTIONS", path: "/v1/rooms/chat:a/messages", hdr: map[string]string{"Origin": origin}})
		if (r.status == http.StatusNoContent) != want {
			t.Errorf("Origin %q: preflight %d, want allowed=%v", origin, r.status, want)
		}
	}
}

// originStatus tries a WebSocket upgrade from origin and returns its HTTP
// status (101 when it went through).
func originStatus(t *testing.T, base string, hc *http.Client, origin string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), "GET", base+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOriginSameHost: without a list (and outside dev mode) only the
// node's own host and port pass, whatever the case, and never with
// userinfo.
func TestOriginSameHost(t *testing.T) {
	ts := newAuthServer(t, nil, nil)
	host := strings.TrimPrefix(ts.URL, "http://")
	for origin, want := range map[string]bool{
		"http://" + host:                  true,
		"http://" + strings.ToUpper(host): true,
		"http://x@" + host:                false,
		"http://" + host + "/":            true,
		"http://" + host + "/a":           false,
		"http://127.0.0.1:1":              false,
		"http://evil.example.com":         false,
	} {
		if got := originStatus(t, ts.URL, ts.http.Client(), origin); (got == http.StatusForbidden) == want {
			t.Errorf("Origin %q: HTTP %d, want allowed=%v", origin, got, want)
		}
	}
	// Over TLS the page must be https: a plain-http page of the same host
	// (one a network attacker can write) is refused.
	hs := httptest.NewTLSServer(ts.Handler())
	defer hs.Close()
	tlsHost := strings.TrimPrefix(hs.URL, "https://")
	if got := originStatus(t, hs.URL, hs.Client(), "https://"+tlsHost); got != http.StatusSwitchingProtocols {
		t.Errorf("TLS, https origin of the same host: HTTP %d", got)
	}
	if got := originStatus(t, hs.URL, hs.Client(), "http://"+tlsHost); got != http.StatusForbidden {
		t.Errorf("TLS, http origin of the same host: HTTP %d", got)
	}
}

// TestCORSWildcardNoCredentials: an origin allowed only by "*" is answered
// "Access-Control-Allow-Origin: *" without credentials (never its own name
// with Allow-Credentials: true); a listed one is echoed with credentials.
func TestCORSWildcardNoCredentials(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.AllowedOrigins = []string{"*", "https://app.example.com"}
	})
	check := func(origin, wantOrigin, wantCreds string) {
		t.Helper()
		for _, q := range []apiReq{
			{method: "GET", path: "/v1/rooms", hdr: map[string]string{"Origin": origin}},
			{method: "OPTIONS", path: "/v1/rooms/chat:a/messages", hdr: map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST"}},
		} {
			r := ts.api(t, q)
			if r.status >= 300 || r.hdr.Get("Access-Control-Allow-Origin") != wantOrigin || r.hdr.Get("Access-Control-Allow-Credentials") != wantCreds {
				t.Errorf("%s from %s: %d, Allow-Origin %q, Allow-Credentials %q; want %q, %q", q.method, origin, r.status,
					r.hdr.Get("Access-Control-Allow-Origin"), r.hdr.Get("Access-Control-Allow-Credentials"), wantOrigin, wantCreds)
			}
		}
		s := openSSE(t, ts.http.Client(), eventsURL(ts, "chat:cors", ""), http.Header{"Origin": {origin}})
		if h := s.resp.Header; h.Get("Access-Control-Allow-Origin") != wantOrigin || h.Get("Access-Control-Allow-Credentials") != wantCreds {
			t.Errorf("SSE from %s: Allow-Origin %q, Allow-Credentials %q", origin, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
		}
	}
	check("https://evil.example.com", "*", "")
	check("https://app.example.com", "https://app.example.com", "true")
	dev := newTestServer(t, nil) // dev mode allows any origin: the same as "*"
	r := dev.api(t, apiReq{method: "GET", path: "/v1/rooms", hdr: map[string]string{"Origin": "https://evil.example.com"}})
	if r.hdr.Get("Access-Control-Allow-Origin") != "*" || r.hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("dev mode: Allow-Origin %q, Allow-Credentials %q", r.hdr.Get("Access-Control-Allow-Origin"), r.hdr.Get("Access-Control-Allow-Credentials"))
	}
}

// TestBadAllowedOrigin: New refuses an allow-list entry that is no origin.
func TestBadAllowedOrigin(t *testing.T) {
	for _, o := range []string{"app.example.com", "https://u@app.example.com", "https://app.example.com/x", "ws://a.example"} {
		if _, err := newOriginPolicy([]string{o}); err == nil {
			t.Errorf("%q accepted", o)
		}
	}
}
