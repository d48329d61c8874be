package roomd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// quiet are the settings of the tests' nodes: no wait on Close, no demo
// pages.
const quiet = "drain_delay: -1s\nshutdown_grace: 5s\nweb: false\n"

func settings(t *testing.T, yaml string) *Settings {
	t.Helper()
	s, err := ParseSettings([]byte(quiet + yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// app is an embedding program: its own mux, with the node under /rt/ and
// a route of its own, on a loopback port.
type app struct {
	node *Node
	url  string // the node's base URL
	hs   *http.Server
	done chan error
	// closeErr is what Node.Close is to return (nil but in a test of a
	// Close cut short).
	closeErr error
}

func startApp(t *testing.T, cfg Config) *app {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Addr = ln.Addr()
	n, err := New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "the app\n") })
	prefix := "/rt"
	if cfg.Settings != nil && cfg.Settings.Clustered() {
		prefix = "" // peers dial /v1/peer at the root
		mux.Handle("/", n)
	} else {
		mux.Handle("/rt/", http.StripPrefix(prefix, n))
	}
	a := &app{node: n, url: "http://" + ln.Addr().String() + prefix, hs: &http.Server{Handler: mux}, done: make(chan error, 1)}
	go func() { a.done <- a.hs.Serve(ln) }()
	t.Cleanup(func() { a.close(t) })
	return a
}

// close closes the node, then the app's server.
func (a *app) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.node.Close(ctx); !errors.Is(err, a.closeErr) {
		t.Errorf("Close: %v", err)
	}
	if err := a.hs.Shutdown(ctx); err != nil {
		t.Errorf("app shutdown: %v", err)
	}
	if err := <-a.done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("app serve: %v", err)
	}
	a.done <- http.ErrServerClosed // close is called twice by some tests
}

func (a *app) dial(t *testing.T) *client.Conn {
	t.Helper()
	c, _, err := client.Dial(testCtx(t), a.url+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func send(t *testing.T, c *client.Conn, f client.M) {
	t.Helper()
	if err := c.Send(f); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, c *client.Conn, typ string, skip ...string) *protocol.Frame {
	t.Helper()
	f, err := c.Expect(testCtx(t), typ, skip...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sseLines opens a room's SSE stream and sends its data lines on a
// channel, closed when the stream ends.
func sseLines(t *testing.T, url string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("SSE: %s", resp.Status)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				lines <- d
			}
		}
	}()
	return lines
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("SSE stream ended before %s", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no SSE data with %s", want)
		}
	}
}

// recorder is an application's in-process hooks: it denies joins of
// chat:banned, replaces "shout" with "SHOUT", and records what was
// published.
type recorder struct {
	mu        sync.Mutex
	joins     []JoinRequest
	published []PublishedEvent
}

func (r *recorder) hooks() *Hooks {
	return &Hooks{
		Join: func(_ context.Context, req *JoinRequest) (*JoinResult, error) {
			r.mu.Lock()
			r.joins = append(r.joins, *req)
			r.mu.Unlock()
			if req.Room == "chat:banned" {
				return &JoinResult{Allow: false, Reason: "banned"}, nil
			}
			return &JoinResult{Allow: true}, nil
		},
		Publish: func(_ context.Context, req *PublishRequest) (*PublishResult, error) {
			if string(req.Data) == `"shout"` {
				return &PublishResult{Allow: true, Data: json.RawMessage(`"SHOUT"`)}, nil
			}
			return &PublishResult{Allow: true}, nil
		},
		Published: func(_ context.Context, ev *PublishedEvent) error {
			r.mu.Lock()
			r.published = append(r.published, *ev)
			r.mu.Unlock()
			return nil
		},
	}
}

func (r *recorder) publishedData() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.published {
		out = append(out, fmt.Sprintf("%s %d %s", ev.Room, ev.Seq, ev.Data))
	}
	return out
}

// TestEmbeddedHooks serves a node inside an app's mux: a WebSocket client
// and an SSE spectator use it under the app's prefix, the in-process join
// hook denies a room, the publish hook replaces a payload that both
// clients see, and the published hook gets the committed message.
func TestEmbeddedHooks(t *testing.T) {
	rec := &recorder{}
	a := startApp(t, Config{Settings: settings(t, ""), Hooks: rec.hooks()})

	resp, err := http.Get(a.url[:strings.LastIndex(a.url, "/rt")] + "/app")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "the app\n" {
		t.Fatalf("the app's own route: %q", body)
	}

	c := a.dial(t)
	send(t, c, client.M{"t": "join", "id": 1, "r": "chat:banned"})
	if e := expect(t, c, protocol.TypeErr); e.Code != protocol.CodeDenied || e.Msg != "banned" {
		t.Fatalf("join of chat:banned: %d %q, want the hook's denial", e.Code, e.Msg)
	}
	send(t, c, client.M{"t": "join", "id": 2, "r": "chat:a"})
	expect(t, c, protocol.TypeJoined, protocol.TypePres)
	sse := sseLines(t, a.url+"/v1/rooms/chat:a/events")
	waitLine(t, sse, `"epoch"`) // the snapshot: the stream is on

	send(t, c, client.M{"t": "pub", "id": 3, "r": "chat:a", "d": "shout"})
	m := expect(t, c, protocol.TypeMsg, protocol.TypePres, protocol.TypeOK)
	if v, err := client.Value(m.D); err != nil || v != "SHOUT" {
		t.Fatalf("message %v (%v), want the publish hook's replacement", v, err)
	}
	waitLine(t, sse, `SHOUT`)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if got := fmt.Sprint(rec.publishedData()); got != `[chat:a 1 "SHOUT"]` {
			return fmt.Errorf("published %s", got)
		}
		return nil
	})
	rec.mu.Lock()
	joins := len(rec.joins)
	rec.mu.Unlock()
	if joins != 2 {
		t.Fatalf("%d join hook calls, want 2", joins)
	}
}

// TestCloseDrains closes a node with a WebSocket client and an SSE
// spectator on it: the client gets bye shutdown, the stream ends, and no
// goroutine the node started is left.
func TestCloseDrains(t *testing.T) {
	before := goleak.IgnoreCurrent()
	rec := &recorder{}
	a := startApp(t, Config{Settings: settings(t, ""), Hooks: rec.hooks()})
	c := a.dial(t)
	send(t, c, client.M{"t": "join", "id": 1, "r": "chat:a"})
	expect(t, c, protocol.TypeJoined, protocol.TypePres)
	sse := sseLines(t, a.url+"/v1/rooms/chat:a/events")
	waitLine(t, sse, `"epoch"`)

	a.close(t)
	f, err := c.Next(testCtx(t))
	for err == nil && f.T != protocol.TypeBye {
		f, err = c.Next(testCtx(t))
	}
	if err != nil || f.Code != protocol.CodeShutdown {
		t.Fatalf("after Close: %v %v, want bye shutdown", f, err)
	}
	for range sse { // ends with the stream
	}
	if err := a.node.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = c.Close()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}

// TestCloseBoundedByContext: a Close whose ctx has ended cuts the
// connections left and says so.
func TestCloseBoundedByContext(t *testing.T) {
	s := settings(t, "")
	s.DrainDelay = Duration(time.Hour)
	a := startApp(t, Config{Settings: s})
	a.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := a.node.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the deadline", err)
	}
	a.closeErr = context.DeadlineExceeded
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v, past its ctx", d)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Config{Settings: &Settings{}}); !errors.Is(err, ErrSettings) {
		t.Fatalf("hand-built settings: %v", err)
	}
	s := settings(t, "cluster:\n  secret: a-secret-of-at-least-32-bytes-long\n  expect: 2\n  bind: 127.0.0.1:0\n")
	if _, err := New(Config{Settings: s, Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, ErrNoAddr) {
		t.Fatalf("clustered without an address: %v", err)
	}
	s = settings(t, "")
	s.Limits.MaxConns = -1
	if _, err := New(Config{Settings: s}); err == nil || !strings.Contains(err.Error(), "max_conns") {
		t.Fatalf("invalid setting changed in Go: %v", err)
	}
	if _, err := ParseSettings([]byte("rooms:\n  histroy_size: 3\n")); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}

// TestDefaultsAndMetrics: a node with nil Settings runs on the defaults,
// with its metrics on a registry of its own.
func TestDefaultsAndMetrics(t *testing.T) {
	n, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = n.Close(ctx) // drain_delay is 5 s by default: cut short
	}()
	if n.Registry() == nil {
		t.Fatal("metrics are on by default: want a registry")
	}
	if m := n.Members(); len(m) != 1 || m[0] != n.Name() {
		t.Fatalf("members %v, want this node alone", m)
	}
	if n.GossipAddr() != "" {
		t.Fatalf("a cluster of one gossips at %q", n.GossipAddr())
	}
}
