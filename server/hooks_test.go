package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/hooks"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

var hookSecret = []byte("hook-secret")

// appBackend is an application's backend on a loopback port: it verifies
// signatures, decides by a few rules, and records what was published.
type appBackend struct {
	mu        sync.Mutex
	failing   bool
	published []hooks.PublishedEvent
	trans     []string // "occupied ID", "vacated ID"
	badSigs   int
}

func (b *appBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := hooks.Verify(r.Header.Get(hooks.SignatureHeader), body, time.Now(), 0, hookSecret); err != nil {
		b.badSigs++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if b.failing {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var in struct {
		hooks.PublishedEvent
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &in)
	var out any = map[string]any{"allow": true}
	switch hooks.Name(r.Header.Get(hooks.HookHeader)) {
	case hooks.Connect:
		if in.Token != "good" {
			out = map[string]any{"allow": false}
			break
		}
		out = map[string]any{"allow": true, "user": "ann", "info": map[string]any{"name": "Ann"},
			"rooms": map[string][]string{"chat:*": {"join", "pub", "pres"}}}
	case hooks.Join:
		if in.Room == "chat:banned" {
			out = map[string]any{"allow": false, "reason": "banned"}
		} else {
			out = map[string]any{"allow": true, "presence": map[string]any{"role": "mod"}}
		}
	case hooks.Publish:
		switch string(in.Data) {
		case `"bad"`:
			out = map[string]any{"allow": false, "reason": "moderated"}
		case `"shout"`:
			out = map[string]any{"allow": true, "data": "SHOUT"}
		}
	case hooks.Published:
		b.published = append(b.published, in.PublishedEvent)
	case hooks.Occupied, hooks.Vacated:
		var ev hooks.RoomEvent
		_ = json.Unmarshal(body, &ev)
		b.trans = append(b.trans, string(ev.Hook)+" "+ev.ID)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// waitPublished waits until the backend has acknowledged the published
// events of exactly these seqs, in this order.
func (b *appBackend) waitPublished(t *testing.T, seqs ...uint64) {
	t.Helper()
	checkFor(t, 5*time.Second, func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		var got []uint64
		for _, ev := range b.published {
			got = append(got, ev.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(seqs) {
			return fmt.Errorf("published seqs %v, want %v", got, seqs)
		}
		return nil
	})
}

func (b *appBackend) setFailing(v bool) {
	b.mu.Lock()
	b.failing = v
	b.mu.Unlock()
}

// newHookServer runs a server whose every hook goes to a fresh appBackend.
func newHookServer(t *testing.T, mods ...func(*hooks.Config)) (*testServer, *appBackend) {
	b := &appBackend{}
	hs := httptest.NewServer(b)
	t.Cleanup(hs.Close)
	hc := hooks.Config{
		Secret: hookSecret, ConnectURL: hs.URL,
		Default:  hooks.Namespace{URL: hs.URL, Hooks: []hooks.Name{hooks.Join, hooks.Publish, hooks.Published}},
		RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond, RetryAttempts: 1000,
	}
	for _, m := range mods {
		m(&hc)
	}
	h, err := hooks.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config, _ *room.Config) { c.Hooks = h })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return ts, b
}

func TestHooksConnectJoinPublish(t *testing.T) {
	ts, b := newHookServer(t)

	refused := ts.dial(t)
	send(t, refused, client.M{"t": "hello", "v": 1, "tok": "bad"})
	expectBye(t, refused, protocol.CodeUnauthorized)

	c := ts.dial(t)
	if err := c.Hello(testCtx(t), "good", nil); err != nil {
		t.Fatal(err)
	}
	if c.Welcome.U != "ann" {
		t.Fatalf("welcome user %q, want the connect hook's ann", c.Welcome.U)
	}
	send(t, c, client.M{"t": "join", "id": 1, "r": "other:a"})
	if e := expect(t, c, protocol.TypeErr); e.Code != protocol.CodeForbidden {
		t.Fatalf("join outside the hook's grants: %d", e.Code)
	}
	send(t, c, client.M{"t": "join", "id": 2, "r": "chat:banned"})
	if e := expect(t, c, protocol.TypeErr); e.Code != protocol.CodeDenied || e.Msg != "banned" {
		t.Fatalf("denied join: %d %q", e.Code, e.Msg)
	}
	join(t, c, 3, "chat:a", client.M{"p": map[string]any{"role": "user"}})
	members, _ := ts.rooms.Presence("chat:a")
	if len(members) != 1 || fmt.Sprint(value(t, members[0].D)) != "map[role:mod]" {
		t.Fatalf("presence %+v: want the join hook's", members)
	}
	send(t, c, client.M{"t": "pub", "id": 4, "r": "chat:a", "d": "bad"})
	if e := expect(t, c, protocol.TypeErr, protocol.TypePres); e.Code != protocol.CodeDenied || e.Msg != "moderated" {
		t.Fatalf("denied pub: %d %q", e.Code, e.Msg)
	}
	send(t, c, client.M{"t": "pub", "id": 5, "r": "chat:a", "d": "shout"})
	m := expect(t, c, protocol.TypeMsg, protocol.TypePres, protocol.TypeOK)
	if v := value(t, m.D); v != "SHOUT" {
		t.Fatalf("message %v, want the publish hook's replacement", v)
	}
	send(t, c, client.M{"t": "pub", "id": 6, "r": "chat:a", "d": "hi"})
	expect(t, c, protocol.TypeMsg, protocol.TypeOK)

	if r := ts.api(t, apiReq{method: "POST", path: "/v1/rooms/chat:a/messages", body: `{"data":"bad"}`, ctype: "application/json"}); r.status != 403 ||
		fmt.Sprint(r.body["error"].(map[string]any)["code"]) != "110" {
		t.Fatalf("denied API publish: %d %s", r.status, r.raw)
	}
	b.waitPublished(t, 1, 2)
	b.mu.Lock()
	got := b.published
	b.mu.Unlock()
	if got[0].Seq != 1 || string(got[0].Data) != `"SHOUT"` || got[1].Seq != 2 || string(got[1].Data) != `"hi"` ||
		got[0].User != "ann" || got[0].Epoch == "" || got[0].Epoch != got[1].Epoch {
		t.Fatalf("published %+v", got)
	}

	b.setFailing(true) // the deny policy: err 6, the client may retry
	send(t, c, client.M{"t": "pub", "id": 7, "r": "chat:a", "d": "x"})
	if e := expect(t, c, protocol.TypeErr, protocol.TypeOK); e.Code != protocol.CodeUnavailable || e.ID != 7 {
		t.Fatalf("pub while the backend fails: %d", e.Code)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.badSigs != 0 {
		t.Fatalf("%d requests with a bad signature", b.badSigs)
	}
}

// TestHooksDeadLetterAPI: messages the backend cannot take fill the
// dead-letter store; the API lists them, replays one and the rest, and
// discards.
func TestHooksDeadLetterAPI(t *testing.T) {
	ts, b := newHookServer(t, func(c *hooks.Config) {
		c.Default.Hooks = []hooks.Name{hooks.Published}
		c.RetryAttempts, c.BreakerOpen = 2, 20*time.Millisecond
	})
	b.setFailing(true)
	for i := range 3 {
		if r := ts.api(t, apiReq{method: "POST", path: "/v1/rooms/dl/messages", body: fmt.Sprintf(`{"data":%d}`, i+1), ctype: "application/json"}); r.status != 200 {
			t.Fatalf("publish: %d %s", r.status, r.raw)
		}
	}
	var list struct {
		DeadLetters []hooks.DeadLetter `json:"dead_letters"`
		Next        uint64             `json:"next"`
	}
	checkFor(t, 5*time.Second, func() error {
		r := ts.api(t, apiReq{method: "GET", path: "/v1/hooks/dead-letters"})
		if err := json.Unmarshal(r.raw, &list); err != nil {
			return err
		}
		if len(list.DeadLetters) != 3 {
			return fmt.Errorf("%d dead letters: %s", len(list.DeadLetters), r.raw)
		}
		return nil
	})
	d := list.DeadLetters[0]
	if d.Hook != hooks.Published || d.Room != "dl" || d.Attempts != 2 || d.Event.Published == nil || d.Event.Published.Seq != 1 ||
		list.Next != list.DeadLetters[2].ID {
		t.Fatalf("dead letters %+v next %d", list.DeadLetters, list.Next)
	}
	r := ts.api(t, apiReq{method: "GET", path: fmt.Sprintf("/v1/hooks/dead-letters?after=%d&limit=1", d.ID)})
	if err := json.Unmarshal(r.raw, &list); err != nil || len(list.DeadLetters) != 1 || list.DeadLetters[0].Event.Published.Seq != 2 {
		t.Fatalf("page: %s", r.raw)
	}
	if r := ts.api(t, apiReq{method: "GET", path: "/v1/hooks/dead-letters?after=x"}); r.status != 400 {
		t.Fatalf("bad after: %d", r.status)
	}
	b.setFailing(false)
	if r := ts.api(t, apiReq{method: "POST", path: fmt.Sprintf("/v1/hooks/dead-letters/replay?ids=%d", d.ID)}); string(r.raw) != `{"replayed":1}` {
		t.Fatalf("replay one: %d %s", r.status, r.raw)
	}
	b.waitPublished(t, 1)
	if r := ts.api(t, apiReq{method: "DELETE", path: "/v1/hooks/dead-letters?ids=" + fmt.Sprint(list.DeadLetters[0].ID)}); string(r.raw) != `{"discarded":1}` {
		t.Fatalf("discard: %d %s", r.status, r.raw)
	}
	if r := ts.api(t, apiReq{method: "POST", path: "/v1/hooks/dead-letters/replay"}); string(r.raw) != `{"replayed":1}` {
		t.Fatalf("replay the rest: %d %s", r.status, r.raw)
	}
	b.waitPublished(t, 1, 3)
}

// TestHooksOccupiedVacated: on one node, a room's first member makes it
// occupied, a second member nothing, the last one's leave vacated, and a
// new member occupied again: transitions 1, 2, 3 of the room's epoch.
func TestHooksOccupiedVacated(t *testing.T) {
	ts, b := newHookServer(t, func(c *hooks.Config) {
		c.Default.Hooks = []hooks.Name{hooks.Occupied, hooks.Vacated}
		c.ConnectURL = ""
	})
	a, c2 := ts.connect(t), ts.connect(t)
	join(t, a, 1, "occ", nil)
	join(t, c2, 1, "occ", nil)
	info, _ := ts.rooms.Info("occ")
	e := info.Epoch
	want := func(w ...string) {
		t.Helper()
		checkFor(t, 5*time.Second, func() error {
			b.mu.Lock()
			defer b.mu.Unlock()
			if fmt.Sprint(b.trans) != fmt.Sprint(w) {
				return fmt.Errorf("transitions %v, want %v", b.trans, w)
			}
			return nil
		})
	}
	want("occupied " + e + "/1")
	send(t, a, client.M{"t": "leave", "id": 2, "r": "occ"})
	expect(t, a, protocol.TypeOK, protocol.TypePres)
	send(t, c2, client.M{"t": "leave", "id": 2, "r": "occ"})
	expect(t, c2, protocol.TypeOK, protocol.TypePres)
	want("occupied "+e+"/1", "vacated "+e+"/2")
	join(t, a, 3, "occ", nil)
	want("occupied "+e+"/1", "vacated "+e+"/2", "occupied "+e+"/3")
	checkFor(t, 5*time.Second, func() error { // the marks are in the room's record
		_, st, _ := ts.rooms.HookState("occ")
		if st.Trans != 3 || st.TransDone != 3 {
			return fmt.Errorf("record %+v", st)
		}
		return nil
	})
}
