package server

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metric returns the value of a family's series whose labels include want.
func metric(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam, ok := fams[name]
	if !ok {
		return -1
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	prom := NewPrometheus()
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.Metrics = prom
		c.FrameRate, c.FrameBurst, c.FloodStrikes = 5, 5, 1000
	})
	before := scrape(t, ts.URL)
	if metric(before, "roomd_connections", nil) != 0 || metric(before, "roomd_queued_bytes", nil) != 0 {
		t.Fatal("a fresh node reports traffic")
	}
	a, b := ts.connect(t), ts.connect(t)
	join(t, a, 1, "chat:m", nil)
	join(t, b, 1, "chat:m", nil)
	send(t, a, client.M{"t": "pub", "id": 2, "r": "chat:m", "d": "x"})
	expect(t, a, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres)
	send(t, a, client.M{"t": "shout", "id": 3})
	expect(t, a, protocol.TypeErr, protocol.TypeMsg, protocol.TypePres)
	send(t, a, repeat(client.M{"t": "leave", "r": "nope:x"}, 8)...) // over the burst of 5

	checkFor(t, 5*time.Second, func() error {
		m := scrape(t, ts.URL)
		for _, c := range []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"roomd_connections", nil, 2},
			{"roomd_connections_total", nil, 2},
			{"roomd_frames_in_total", map[string]string{"type": "pub"}, 1},
			{"roomd_frames_in_total", map[string]string{"type": "join"}, 2},
			{"roomd_frames_in_total", map[string]string{"type": "other"}, 1},
			{"roomd_deliveries_total", map[string]string{"kind": "msg"}, 2},
			{"roomd_deliveries_total", map[string]string{"kind": "joined"}, 2},
			{"roomd_messages_out_total", nil, 4},
			{"roomd_bytes_in_total", nil, 50},
			{"roomd_errors_total", map[string]string{"code": "unknown_type"}, 1},
			{"roomd_rate_limited_total", nil, 1},
			{"roomd_publish_to_write_seconds", nil, 1},
		} {
			if got := metric(m, c.name, c.labels); got < c.min {
				return fmt.Errorf("%s%v = %v, want >= %v", c.name, c.labels, got, c.min)
			}
		}
		return nil
	})
	_ = a.Close()
	_ = b.Close()
	checkFor(t, 5*time.Second, func() error {
		if got := metric(scrape(t, ts.URL), "roomd_connections", nil); got != 0 {
			return fmt.Errorf("roomd_connections = %v after close", got)
		}
		return nil
	})
	c := ts.dial(t)
	send(t, c, client.M{"t": "hello", "v": 7})
	expectBye(t, c, protocol.CodeUnsupported)
	checkFor(t, 5*time.Second, func() error {
		if got := metric(scrape(t, ts.URL), "roomd_byes_total", map[string]string{"code": "unsupported_version"}); got != 1 {
			return fmt.Errorf("byes{unsupported_version} = %v", got)
		}
		return nil
	})
}

// TestDashboardQueriesExistingMetrics checks that every roomd_ metric the
// Grafana dashboard in deploy/ queries is one the server exports.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	p := NewPrometheus()
	p.GaugeFunc("queued_bytes", "test", func() float64 { return 0 })
	p.GaugeFunc("parked_connections", "test", func() float64 { return 0 })
	// Touch every series once so that vectors appear in the output.
	p.ConnOpened()
	p.ObserverOpened()
	p.FrameIn("pub")
	p.MessageIn(1)
	p.MessageOut(1, 1)
	p.Delivered("msg")
	p.SlowConsumer("ws")
	p.EphemeralDropped()
	p.PublishToWrite(time.Millisecond)
	p.AuthFailure("expired")
	p.ErrorSent(protocol.CodeBadRequest)
	p.ByeSent(protocol.CodeShutdown)
	p.RateLimited()
	p.LimitRefused(limitAddrRate)
	p.APIRequest("GET /v1/rooms", 200)
	p.Forwarded("pub")
	p.Committed(time.Millisecond)
	p.LeaderChanged()
	p.Groups(3, 5, 2, 7)
	p.LinkUp()
	p.LinkDown()
	fams, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	raw, err := os.ReadFile("../deploy/grafana/roomd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(roomd_[a-z_]+|process_[a-z_]+|go_[a-z_]+)`).FindAllString(string(raw), -1)
	if len(names) < 10 {
		t.Fatalf("only %d metric names in the dashboard", len(names))
	}
	for _, n := range names {
		base := strings.TrimSuffix(n, "_bucket")
		if !have[base] {
			t.Errorf("the dashboard queries %s, which the server does not export", n)
		}
	}
}
