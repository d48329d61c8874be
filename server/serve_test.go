package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/room"
)

// TestTricklingClientIsCut: a client that sends its request headers a byte
// at a time cannot hold a socket past ReadHeaderTimeout.
func TestTricklingClientIsCut(t *testing.T) {
	rooms, err := room.New(room.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Close()
	cl, err := cluster.New(cluster.Config{Rooms: rooms, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Shutdown(context.Background()) }()
	srv, err := New(Config{Router: cl, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReadHeaderTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	req := []byte("GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
	var werr error
	for i := 0; i < len(req) && werr == nil && time.Since(start) < 5*time.Second; i++ {
		_, werr = c.Write(req[i : i+1])
		time.Sleep(50 * time.Millisecond) // the trickle is the behaviour under test
	}
	// The server hangs up: reads end without a response to the unfinished request.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, rerr := io.ReadAll(c)
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("a trickling client held its socket %v (read: %v, write: %v)", el, rerr, werr)
	}
}
