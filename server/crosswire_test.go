package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
)

// TestAPIPublishReachesWebSocketAndSSEWithTheSameSeq publishes through the
// HTTP API and checks that a WebSocket member and an SSE observer of the
// room both receive it under the seq the API answered.
func TestAPIPublishReachesWebSocketAndSSEWithTheSameSeq(t *testing.T) {
	ts := newTestServer(t, nil)
	member := ts.connect(t)
	join(t, member, 1, "chat:x", nil)
	obs := openSSE(t, sseClient(t, nil), eventsURL(ts, "chat:x", ""), nil)
	obs.expect("snapshot")

	body := ts.ok(t, apiReq{method: http.MethodPost, path: "/v1/rooms/chat:x/messages", body: `{"data":{"text":"from the API"}}`})
	n, err := body["seq"].(json.Number).Int64()
	seq := uint64(n)
	if err != nil {
		t.Fatal(err)
	}
	if seq == 0 {
		t.Fatalf("API answered %v", body)
	}
	m := expect(t, member, protocol.TypeMsg, protocol.TypePres)
	if m.S != seq || value(t, m.D).(map[string]any)["text"] != "from the API" || m.C != "" {
		t.Fatalf("WebSocket got %+v, API said seq %d", m, seq)
	}
	ev := obs.expect("message", "presence")
	got := jsonOf(t, ev)
	if num(got["seq"]) != seq || got["data"].(map[string]any)["text"] != "from the API" {
		t.Fatalf("SSE got %v, API said seq %d", got, seq)
	}
	if ev.ID == "" {
		t.Fatal("durable SSE event without id")
	}
}

// TestWebSocketOriginAllowList refuses a browser origin outside the list.
func TestWebSocketOriginAllowList(t *testing.T) {
	ts := newAuthServer(t, nil, func(c *Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	for origin, ok := range map[string]bool{
		"https://app.example.com":  true,
		"https://evil.example.com": false,
		"":                         true, // not a browser
	} {
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		c, resp, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{Header: hdr})
		if ok {
			if err != nil {
				t.Fatalf("origin %q refused: %v", origin, err)
			}
			c.Close()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: err %v, resp %v; want 403", origin, err, resp)
		}
		var body apiError
		if derr := json.NewDecoder(resp.Body).Decode(&body); derr != nil || body.Error.Code != protocol.CodeForbidden {
			t.Fatalf("origin %q refused with %+v (%v), want code 107", origin, body, derr)
		}
	}
	// Without a list, a node that is not in dev mode accepts only its own host.
	same := newAuthServer(t, nil, nil)
	hdr := http.Header{"Origin": {"https://elsewhere.example.com"}}
	if _, resp, err := client.Dial(testCtx(t), same.URL, &client.DialOptions{Header: hdr}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin without a list: err %v, resp %v", err, resp)
	}
	hdr.Set("Origin", same.URL)
	c, _, err := client.Dial(testCtx(t), same.URL, &client.DialOptions{Header: hdr})
	if err != nil {
		t.Fatalf("same-host origin refused: %v", err)
	}
	c.Close()
}
