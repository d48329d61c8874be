package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"hook":"join"}`)
	now := time.Unix(1_800_000_000, 0)
	sig := Sign(testSecret, body, now)
	if !strings.HasPrefix(sig, "t=1800000000,v1=") {
		t.Fatalf("signature %q", sig)
	}
	for _, tc := range []struct {
		name    string
		header  string
		body    string
		at      time.Time
		secrets [][]byte
		want    error
	}{
		{"good", sig, string(body), now, [][]byte{testSecret}, nil},
		{"rotated", sig, string(body), now, [][]byte{[]byte("new"), testSecret}, nil},
		{"within window", sig, string(body), now.Add(4 * time.Minute), [][]byte{testSecret}, nil},
		{"replayed late", sig, string(body), now.Add(6 * time.Minute), [][]byte{testSecret}, ErrSignatureStale},
		{"from the future", sig, string(body), now.Add(-6 * time.Minute), [][]byte{testSecret}, ErrSignatureStale},
		{"body changed", sig, `{"hook":"publish"}`, now, [][]byte{testSecret}, ErrSignatureInvalid},
		{"other secret", sig, string(body), now, [][]byte{[]byte("x")}, ErrSignatureInvalid},
		{"timestamp changed", strings.Replace(sig, "t=1800000000", "t=1800000001", 1), string(body), now, [][]byte{testSecret}, ErrSignatureInvalid},
		{"empty", "", string(body), now, [][]byte{testSecret}, ErrSignatureMissing},
		{"no v1", "t=1800000000", string(body), now, [][]byte{testSecret}, ErrSignatureMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.header, []byte(tc.body), tc.at, 0, tc.secrets...); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHookPayloadsAndSignatures(t *testing.T) {
	b := newTestBackend(t)
	h := newTestHooks(t, b.srv.URL, func(c *Config) { c.ConnectHeaders = []string{"X-App"} })
	b.answer(Connect, func([]byte) any {
		return map[string]any{"allow": true, "user": "ann", "info": map[string]any{"name": "Ann"},
			"rooms": map[string][]string{"chat:*": {"join", "pub"}}, "exp": 1900000000}
	})
	b.answer(Join, func([]byte) any { return map[string]any{"allow": true, "presence": map[string]any{"role": "mod"}} })
	b.answer(Publish, func([]byte) any { return map[string]any{"allow": true, "data": "replaced"} })
	ctx := context.Background()

	cr, err := h.Connect(ctx, &ConnectRequest{Conn: "c1", Token: "tok", Addr: "127.0.0.1",
		Cookies: map[string]string{"sid": "s1"}, Headers: map[string]string{"X-App": "demo"}})
	if err != nil || !cr.Allow || cr.User != "ann" || string(cr.Info) != `{"name":"Ann"}` || cr.Expires != 1900000000 ||
		len(cr.Rooms["chat:*"]) != 2 {
		t.Fatalf("connect: %+v, %v", cr, err)
	}
	jr, err := h.Join(ctx, &JoinRequest{Room: "chat:a", Conn: "c1", User: "ann", Info: json.RawMessage(`{"name":"Ann"}`),
		Presence: json.RawMessage(`{"s":1}`)})
	if err != nil || !jr.Allow || string(jr.Presence) != `{"role":"mod"}` {
		t.Fatalf("join: %+v, %v", jr, err)
	}
	pr, err := h.Publish(ctx, &PublishRequest{Room: "chat:a", Conn: "c1", User: "ann", Data: json.RawMessage(`"hi"`)})
	if err != nil || !pr.Allow || string(pr.Data) != `"replaced"` {
		t.Fatalf("publish: %+v, %v", pr, err)
	}
	h.Deliver(Event{Published: &PublishedEvent{Room: "chat:a", Epoch: "e1", Seq: 7, User: "ann", Conn: "c1", TS: 1700000000000,
		Data: json.RawMessage(`"hi"`)}})
	h.Deliver(Event{Lifecycle: &RoomEvent{Hook: Occupied, Room: "chat:a", Epoch: "e1", N: 1, ID: "e1/1", TS: 5}})
	h.Deliver(Event{Lifecycle: &RoomEvent{Hook: Vacated, Room: "chat:a", Epoch: "e1", N: 2, ID: "e1/2", TS: 6}})
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := len(b.requests()); n != 6 {
			return fmt.Errorf("%d requests", n)
		}
		return nil
	})
	want := []struct {
		hook Name
		body string
	}{
		{Connect, `{"hook":"connect","conn":"c1","token":"tok","addr":"127.0.0.1","cookies":{"sid":"s1"},"headers":{"X-App":"demo"}}`},
		{Join, `{"hook":"join","room":"chat:a","conn":"c1","user":"ann","info":{"name":"Ann"},"presence":{"s":1}}`},
		{Publish, `{"hook":"publish","room":"chat:a","conn":"c1","user":"ann","data":"hi"}`},
		{Published, `{"hook":"published","room":"chat:a","epoch":"e1","seq":7,"user":"ann","conn":"c1","ts":1700000000000,"data":"hi"}`},
		{Occupied, `{"hook":"occupied","room":"chat:a","epoch":"e1","n":1,"id":"e1/1","ts":5}`},
		{Vacated, `{"hook":"vacated","room":"chat:a","epoch":"e1","n":2,"id":"e1/2","ts":6}`},
	}
	for i, r := range b.requests() {
		if r.sig != nil {
			t.Errorf("%s: signature: %v", r.hook, r.sig)
		}
		if r.hook != want[i].hook || string(r.body) != want[i].body {
			t.Errorf("request %d: %s %s\nwant %s %s", i, r.hook, r.body, want[i].hook, want[i].body)
		}
	}
}

func TestDenialIsAnAnswer(t *testing.T) {
	b := newTestBackend(t)
	h := newTestHooks(t, b.srv.URL, nil)
	b.answer(Join, func([]byte) any { return map[string]any{"allow": false, "reason": "banned"} })
	jr, err := h.Join(context.Background(), &JoinRequest{Room: "r", Conn: "c"})
	if err != nil || jr.Allow || jr.Reason != "banned" {
		t.Fatalf("join: %+v, %v", jr, err)
	}
}

// TestFailurePolicies runs connect, join and publish against a backend that
// times out, answers 500, or is down, under each policy.
func TestFailurePolicies(t *testing.T) {
	for _, mode := range []string{"slow", "500", "down"} {
		for _, p := range []Policy{PolicyDeny, PolicyAllow, PolicyAllowAndLog} {
			t.Run(mode+"/"+p.String(), func(t *testing.T) {
				b := newTestBackend(t)
				url := b.srv.URL
				if mode == "down" {
					url = deadURL(t)
				} else {
					b.setMode(mode)
				}
				var logs testutil.SyncBuffer
				h := newTestHooks(t, url, func(c *Config) {
					c.ConnectPolicy, c.Default.JoinPolicy, c.Default.PublishPolicy = p, p, p
					c.ConnectTimeout, c.Default.Timeout = 100*time.Millisecond, 100*time.Millisecond
					c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				})
				ctx := context.Background()
				start := time.Now()
				cr, cerr := h.Connect(ctx, &ConnectRequest{Conn: "c"})
				jr, jerr := h.Join(ctx, &JoinRequest{Room: "r", Conn: "c"})
				pr, perr := h.Publish(ctx, &PublishRequest{Room: "r", Conn: "c", Data: json.RawMessage(`1`)})
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("three calls took %v: the timeout did not hold", d)
				}
				if p == PolicyDeny {
					for _, err := range []error{cerr, jerr, perr} {
						if !errors.Is(err, ErrFailed) {
							t.Errorf("deny: %v, want ErrFailed", err)
						}
					}
					return
				}
				if cr != nil || cerr != nil {
					t.Errorf("connect: %+v, %v; want nil, nil (verify as without the hook)", cr, cerr)
				}
				if jerr != nil || !jr.Allow || perr != nil || !pr.Allow {
					t.Errorf("join %+v %v, publish %+v %v: want allowed", jr, jerr, pr, perr)
				}
				logged := strings.Count(logs.String(), "hook failed")
				if want := map[Policy]int{PolicyAllow: 0, PolicyAllowAndLog: 3}[p]; logged != want {
					t.Errorf("%d failures logged, want %d", logged, want)
				}
			})
		}
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	b := newTestBackend(t)
	b.setMode("500")
	h := newTestHooks(t, b.srv.URL, func(c *Config) {
		c.BreakerFailures, c.BreakerOpen = 3, 200*time.Millisecond
		c.Namespaces = map[string]Namespace{"other": c.Default}
	})
	ctx := context.Background()
	for range 3 {
		if _, err := h.Join(ctx, &JoinRequest{Room: "r"}); !errors.Is(err, ErrFailed) || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("join: %v", err)
		}
	}
	if _, err := h.Join(ctx, &JoinRequest{Room: "r"}); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("join after 3 failures: %v, want the breaker open", err)
	}
	if n := len(b.requests()); n != 3 {
		t.Fatalf("the backend got %d requests, want 3 (the 4th refused by the breaker)", n)
	}
	// A configured namespace's breaker is its own; the namespaces that take
	// the default settings share the default's (rooms' names make no
	// breakers).
	if _, err := h.Join(ctx, &JoinRequest{Room: "other:r"}); errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("configured namespace: %v", err)
	}
	if _, err := h.Join(ctx, &JoinRequest{Room: "unlisted:r"}); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("unlisted namespace: %v, want the default's open breaker", err)
	}
	h.mu.Lock()
	n := len(h.breakers)
	h.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d breakers, want 2 (default and other)", n)
	}
	b.setMode("")
	testutil.CheckFor(t, 5*time.Second, func() error {
		_, err := h.Join(ctx, &JoinRequest{Room: "r"})
		return err
	})
}
