package bench

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

// testServer runs an in-process roomd node on a loopback port and returns
// its base URL. edit may change the server config first.
func testServer(t testing.TB, edit func(*server.Config)) (string, *server.Server) {
	t.Helper()
	rooms, err := room.New(room.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sc := server.Config{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		NodeName:  "bench-test",
		FrameRate: 10000,
		Router:    singleNode(t, rooms, "bench-test"),
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
		rooms.Close()
	})
	return hs.URL, srv
}

// quick is a short run's config.
func quick(url, scenario string) Config {
	c := Defaults()
	c.Scenario = scenario
	c.URLs = []string{url}
	c.Duration = 600 * time.Millisecond
	c.Warmup = 200 * time.Millisecond
	c.Drain = 2 * time.Second
	c.DialConcurrency = 8
	return c
}

func run(t *testing.T, c Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Run(ctx, c)
	if err != nil {
		t.Fatalf("run %s: %v", c.Scenario, err)
	}
	return res
}

// checkClean asserts a low-rate run lost, repeated and reordered nothing.
func checkClean(t *testing.T, res *Result) {
	t.Helper()
	if res.Published == 0 {
		t.Fatalf("nothing published: %+v", res)
	}
	if res.Expected == 0 || res.Delivered != res.Expected {
		t.Errorf("delivered %d, expected %d", res.Delivered, res.Expected)
	}
	if res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.SeqRegressions != 0 {
		t.Errorf("lost %d, duplicates %d, out of order %d, seq regressions %d",
			res.Lost, res.Duplicates, res.OutOfOrder, res.SeqRegressions)
	}
	if res.Rejected != 0 || res.Unacked != 0 {
		t.Errorf("rejected %d, unacked %d", res.Rejected, res.Unacked)
	}
	if res.Latency == nil || res.Latency.Count != res.Delivered || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("latency %+v for %d delivered", res.Latency, res.Delivered)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// singleNode is the router of a cluster of one (no goroutines to stop).
func singleNode(t testing.TB, rooms *room.Manager, name string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cluster.Config{Rooms: rooms, Node: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
