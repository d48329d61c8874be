package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/roomd/roomd/room"
)

func TestWebAssetsServed(t *testing.T) {
	ts := newTestServer(t, nil)
	for path, want := range map[string]string{
		"/":                 "text/html",
		"/chat/":            "text/html",
		"/whiteboard/":      "text/html",
		"/dashboard/":       "text/html",
		"/sdk/roomd.min.js": "javascript",
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Fatalf("%s: %s %q, %d bytes", path, resp.Status, resp.Header.Get("Content-Type"), len(body))
		}
	}
	resp, err := http.Get(ts.URL + "/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"dev":true`) {
		t.Fatalf("/v1/info = %s", body)
	}
	off := newTestServer(t, func(c *Config, _ *room.Config) { c.NoWeb = true })
	resp, err = http.Get(off.URL + "/sdk/roomd.min.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("NoWeb: %s", resp.Status)
	}
}

func TestReadyzDrainingAfterNotReady(t *testing.T) {
	ts := newTestServer(t, nil)
	get := func() int {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("/readyz = %d before", got)
	}
	ts.NotReady()
	if got := get(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d after NotReady", got)
	}
	ts.connect(t) // still serving
}

// TestWebAssetsHardened: every page and the SDK carry the strict
// Content-Security-Policy, and no folder is listed.
func TestWebAssetsHardened(t *testing.T) {
	ts := newTestServer(t, nil)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for _, path := range []string{"/", "/chat/", "/whiteboard/", "/dashboard/", "/sdk/roomd.min.js", "/common.js", "/style.css"} {
		resp, _ := get(path)
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || csp != webCSP {
			t.Fatalf("%s: %s, Content-Security-Policy %q", path, resp.Status, csp)
		}
		for _, want := range []string{"script-src 'self'", "object-src 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) || strings.Contains(csp, "unsafe") {
				t.Fatalf("%s: CSP %q lacks %s or allows something unsafe", path, csp, want)
			}
		}
	}
	for _, path := range []string{"/sdk/", "/sdk", "/sdk/../sdk/", "/chat/../sdk/"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "roomd.min.js") {
			t.Fatalf("%s: %s, body %q", path, resp.Status, body)
		}
	}
}
