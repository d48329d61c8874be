// Package testnode runs an in-process roomd node on a loopback port, for the
// tests of packages that drive a node from outside (the bench, the roomd
// command).
package testnode

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server"
)

// Start runs a node named name (a cluster of one, logging nowhere) and
// returns its base URL and server; edit may change the server's config
// first. The node stops when the test ends.
func Start(t testing.TB, name string, edit func(*server.Config)) (string, *server.Server) {
	t.Helper()
	rooms, err := room.New(room.Config{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := cluster.New(cluster.Config{Rooms: rooms, Node: name})
	if err != nil {
		t.Fatal(err)
	}
	sc := server.Config{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		NodeName: name,
		Router:   router,
		// Load comes from one address: the per-address limits stay out of its way.
		MaxPendingPerAddr: 1 << 20,
		ConnRatePerAddr:   1e6,
	}
	if edit != nil {
		edit(&sc)
	}
	srv, err := server.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = router.Shutdown(ctx)
		rooms.Close()
	})
	return hs.URL, srv
}
