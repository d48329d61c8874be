package bench

import (
	"context"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testnode"
	"github.com/roomd/roomd/server"
)

// testServer runs an in-process roomd node on a loopback port and returns
// its base URL. edit may change the server config first.
func testServer(t testing.TB, edit func(*server.Config)) (string, *server.Server) {
	t.Helper()
	return testnode.Start(t, "bench-test", func(sc *server.Config) {
		sc.FrameRate = 10000
		// These tests check the bench's own counts on floods that must be
		// taken whole (the non-readers must fill their queues) on a machine
		// the race detector slows: admission runs with a target no run
		// reaches (server/admission_test.go tests it).
		sc.AdmissionTarget = 10 * time.Second
		if edit != nil {
			edit(sc)
		}
	})
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
	if res.Rejected != 0 || res.Unacked != 0 || res.AckedPct != 100 {
		t.Errorf("rejected %d, unacked %d, ok rate %.2f %%", res.Rejected, res.Unacked, res.AckedPct)
	}
	if a := res.AckLatency; res.Floor == nil && (a == nil || a.Count != res.Published || a.P50 <= 0 || a.Max < a.P99) {
		t.Errorf("publish→ok %+v for %d published", a, res.Published)
	}
	if res.Latency == nil || res.Latency.Count != res.Delivered || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("latency %+v for %d delivered", res.Latency, res.Delivered)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}
