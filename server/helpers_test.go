package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

type testServer struct {
	*Server
	rooms *room.Manager
	http  *httptest.Server
	URL   string
}

// newTestServer runs a server on a loopback :0 port. edit may change the
// configs before the server is built.
func newTestServer(t testing.TB, edit func(*Config, *room.Config)) *testServer {
	t.Helper()
	rc := room.Config{}
	sc := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NodeName: "test-node",
		// Every test client comes from 127.0.0.1: tests of the per-address
		// limits set their own.
		MaxPendingPerAddr: 1 << 20, ConnRatePerAddr: 1e6}
	if edit != nil {
		edit(&sc, &rc)
	}
	rooms, err := room.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.New(cluster.Config{Rooms: rooms, Node: "test-node", Logger: sc.Logger, Hooks: sc.Hooks})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := sc.Router.(routerWrapper); ok {
		sc.Router = w.wrap(cl) // a test's router around the real one
	} else {
		sc.Router = cl
	}
	srv, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ts := &testServer{Server: srv, rooms: rooms, http: hs, URL: hs.URL}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
		if err := cl.Shutdown(ctx); err != nil {
			t.Errorf("cluster shutdown: %v", err)
		}
		rooms.Close()
	})
	return ts
}

// routerWrapper is a Config.Router a test sets in newTestServer's edit: the
// server then gets wrap of the real router.
type routerWrapper interface {
	cluster.Router
	wrap(cluster.Router) cluster.Router
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects without hello.
func (ts *testServer) dial(t testing.TB) *client.Conn {
	t.Helper()
	c, _, err := client.Dial(testCtx(t), ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connect dials and says hello.
func (ts *testServer) connect(t testing.TB) *client.Conn {
	t.Helper()
	c := ts.dial(t)
	if err := c.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// join joins a room and returns the joined frame.
func join(t testing.TB, c *client.Conn, id uint64, room string, extra client.M) *protocol.Frame {
	t.Helper()
	f := client.M{"t": "join", "id": id, "r": room}
	for k, v := range extra {
		f[k] = v
	}
	send(t, c, f)
	j := expect(t, c, protocol.TypeJoined, protocol.TypePres)
	if j.ID != id || j.R != room {
		t.Fatalf("joined for %d %q, want %d %q", j.ID, j.R, id, room)
	}
	return j
}

func send(t testing.TB, c *client.Conn, frames ...any) {
	t.Helper()
	if err := c.Send(frames...); err != nil {
		t.Fatal(err)
	}
}

func expect(t testing.TB, c *client.Conn, typ string, skip ...string) *protocol.Frame {
	t.Helper()
	f, err := c.Expect(testCtx(t), typ, skip...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// expectBye reads until the server's bye and close, and checks both codes.
func expectBye(t testing.TB, c *client.Conn, code protocol.Code) {
	t.Helper()
	ctx := testCtx(t)
	sawBye := false
	for {
		f, err := c.Next(ctx)
		if err != nil {
			ce, ok := err.(*client.CloseError)
			if !ok {
				t.Fatalf("want close %d, got %v", code.CloseCode(), err)
			}
			if ce.Code != code.CloseCode() {
				t.Fatalf("close code %d, want %d", ce.Code, code.CloseCode())
			}
			if !sawBye {
				t.Fatalf("closed with %d but no bye frame came first", ce.Code)
			}
			return
		}
		if f.T == protocol.TypeBye {
			if f.Code != code {
				t.Fatalf("bye code %d (%s), want %d", f.Code, f.Msg, code)
			}
			sawBye = true
		}
	}
}

func value(t testing.TB, raw protocol.Raw) any {
	t.Helper()
	v, err := client.Value(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkFor polls a condition instead of sleeping (internal/testutil).
var checkFor = testutil.CheckFor

// noMembers waits until the room has no member on this node (or is gone).
func noMembers(t testing.TB, ts *testServer, name string) {
	t.Helper()
	checkFor(t, 5*time.Second, func() error {
		if info, ok := ts.rooms.Info(name); ok && info.Members != 0 {
			return fmt.Errorf("%s still has %d members", name, info.Members)
		}
		return nil
	})
}
