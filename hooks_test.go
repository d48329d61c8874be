package roomd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
)

// TestOccupiedVacated: the in-process occupied and vacated functions are
// called once per transition, in order, as members come and go.
func TestOccupiedVacated(t *testing.T) {
	var mu sync.Mutex
	var got []string
	record := func(_ context.Context, ev *RoomEvent) error {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s %d", ev.Hook, ev.Room, ev.N))
		mu.Unlock()
		return nil
	}
	a := startApp(t, Config{Settings: settings(t, "rooms:\n  presence_grace: 1ms\n"), Hooks: &Hooks{Occupied: record, Vacated: record}})
	seen := func(want string) {
		t.Helper()
		testutil.CheckFor(t, 5*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(got) != want {
				return fmt.Errorf("events %v, want %s", got, want)
			}
			return nil
		})
	}
	c1, c2 := a.dial(t), a.dial(t)
	send(t, c1, map[string]any{"t": "join", "id": 1, "r": "chat:a"})
	expect(t, c1, protocol.TypeJoined, protocol.TypePres)
	send(t, c2, map[string]any{"t": "join", "id": 1, "r": "chat:a"})
	expect(t, c2, protocol.TypeJoined, protocol.TypePres)
	seen("[occupied chat:a 1]")
	send(t, c1, map[string]any{"t": "leave", "id": 2, "r": "chat:a"})
	expect(t, c1, protocol.TypeOK, protocol.TypePres)
	send(t, c2, map[string]any{"t": "leave", "id": 2, "r": "chat:a"})
	expect(t, c2, protocol.TypeOK, protocol.TypePres)
	seen("[occupied chat:a 1 vacated chat:a 2]")
	send(t, c1, map[string]any{"t": "join", "id": 3, "r": "chat:a"})
	expect(t, c1, protocol.TypeJoined, protocol.TypePres)
	seen("[occupied chat:a 1 vacated chat:a 2 occupied chat:a 3]")
}

// TestSettingsHooks: without in-process functions, the node calls the HTTP
// hooks its settings name, signed (the binary's way).
func TestSettingsHooks(t *testing.T) {
	secret := []byte("settings-hook-secret")
	var mu sync.Mutex
	var bad int
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if hooks.Verify(r.Header.Get(hooks.SignatureHeader), body, time.Now(), 0, secret) != nil {
			mu.Lock()
			bad++
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"allow":false,"reason":"not today"}`)
	}))
	defer backend.Close()
	a := startApp(t, Config{Settings: settings(t, fmt.Sprintf("hooks:\n  secret: %s\nrooms:\n  hook_url: %s\n  hooks: join\n", secret, backend.URL))})
	c := a.dial(t)
	send(t, c, map[string]any{"t": "join", "id": 1, "r": "chat:a"})
	if e := expect(t, c, protocol.TypeErr); e.Code != protocol.CodeDenied || e.Msg != "not today" {
		t.Fatalf("join: %d %q, want the backend's denial", e.Code, e.Msg)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d requests badly signed", bad)
	}
}
