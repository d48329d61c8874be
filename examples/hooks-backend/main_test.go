package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestBackend drives the example through roomd's own hooks client: a banned
// user's join is refused, published messages and transitions are stored
// once each however often they come, and an unsigned request is refused.
func TestBackend(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "hooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO bans VALUES ('bob', 'chat:lobby')`); err != nil {
		t.Fatal(err)
	}
	secret := []byte("s3cret")
	srv := httptest.NewServer(newBackend(db, secret))
	defer srv.Close()
	h, err := hooks.New(hooks.Config{Secret: secret, Default: hooks.Namespace{URL: srv.URL,
		Hooks: []hooks.Name{hooks.Join, hooks.Published, hooks.Occupied}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	for user, want := range map[string]bool{"ann": true, "bob": false} {
		res, err := h.Join(ctx, &hooks.JoinRequest{Room: "chat:lobby", Conn: "c", User: user})
		if err != nil || res.Allow != want {
			t.Fatalf("join of %s: %+v %v, want allow %v", user, res, err, want)
		}
	}
	for range 2 { // a redelivery is stored once
		h.Deliver(hooks.Event{Published: &hooks.PublishedEvent{Room: "chat:lobby", Epoch: "e1", Seq: 1, User: "ann", TS: 5,
			Data: json.RawMessage(`{"text":"hi"}`)}})
		h.Deliver(hooks.Event{Lifecycle: &hooks.RoomEvent{Hook: hooks.Occupied, Room: "chat:lobby", Epoch: "e1", N: 1, ID: "e1/1"}})
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		var msgs, trans int
		if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM transitions)`).Scan(&msgs, &trans); err != nil {
			return err
		}
		if msgs != 1 || trans != 1 {
			return fmt.Errorf("%d messages, %d transitions stored", msgs, trans)
		}
		return nil
	})
	var data string
	if err := db.QueryRow(`SELECT data FROM messages WHERE room = 'chat:lobby' AND seq = 1`).Scan(&data); err != nil || data != `{"text":"hi"}` {
		t.Fatalf("stored %q, %v", data, err)
	}
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"hook":"join"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned request: %d", resp.StatusCode)
	}
}
