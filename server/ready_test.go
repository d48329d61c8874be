package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// While Config.Ready returns an error (a cluster still forming), /readyz
// answers 503 with it, and every room op (WebSocket join, the API's
// publish and reads, an SSE stream) is answered with unavailable (6) at
// once; then, ready, the node serves.
func TestNotReadyAnswersUnavailable(t *testing.T) {
	var ready atomic.Bool
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.Ready = func() error {
			if ready.Load() {
				return nil
			}
			return errors.New("forming: 2 of 3 members")
		}
	})
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "forming: 2 of 3 members\n" {
		t.Errorf("/readyz: %d %q while not ready", resp.StatusCode, body)
	}

	c := ts.connect(t)
	start := time.Now()
	send(t, c, map[string]any{"t": "join", "id": 1, "r": "chat:a"})
	f := expect(t, c, protocol.TypeErr)
	if f.Code != protocol.CodeUnavailable || f.ID != 1 || time.Since(start) > time.Second {
		t.Errorf("join while not ready: code %d id %d after %v, want code 6 at once (%q)", f.Code, f.ID, time.Since(start), f.Msg)
	}
	for _, q := range []apiReq{
		{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"x"}`},
		{method: "GET", path: "/v1/rooms/chat:a"},
		{method: "GET", path: "/v1/rooms/chat:a/history"},
	} {
		if r := ts.api(t, q); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.raw), `"code":6,`) {
			t.Errorf("%s %s while not ready: %d %s", q.method, q.path, r.status, r.raw)
		}
	}
	// An SSE stream says bye 6, and EventSource retries.
	resp, err = http.Get(ts.URL + "/v1/rooms/chat:a/events")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "event: bye") || !strings.Contains(string(body), `"code":6`) {
		t.Errorf("SSE while not ready: %s %q", resp.Status, body)
	}

	if r := ts.api(t, apiReq{method: "GET", path: "/v1/cluster"}); r.body["formation"] != "forming: 2 of 3 members" {
		t.Errorf("/v1/cluster while not ready: %s", r.raw)
	}

	ready.Store(true)
	join(t, c, 2, "chat:a", nil)
	if r := ts.api(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"x"}`}); r.status != http.StatusOK {
		t.Errorf("publish once ready: %d %s", r.status, r.raw)
	}
}
