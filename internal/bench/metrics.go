package bench

import (
	"bufio"
	"context"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The server's own view of delivery latency: roomd's /metrics histogram
// roomd_publish_to_write_seconds (a durable event's creation to its write on
// a socket), scraped from every node before and after the window. Set beside
// the bench's end-to-end latency, it tells server-side queueing from the
// time the bench's own readers take to get scheduled.

const publishToWrite = "roomd_publish_to_write_seconds_bucket"

// promBuckets is a cumulative histogram: upper bound (seconds) → count.
type promBuckets map[float64]float64

// counterPrefixes are the server counters a run reports the change of:
// why connections were closed, what errors were sent, and how many frames
// went out in how many writes (the server's write batching).
var counterPrefixes = []string{
	"roomd_byes_total", "roomd_slow_consumer_cuts_total", "roomd_errors_total",
	"roomd_frames_out_total", "roomd_messages_out_total", "roomd_rate_limited_total",
	"roomd_bytes_out_total", "roomd_ws_deflate_messages_total",
	"roomd_ws_deflate_raw_bytes_total", "roomd_ws_deflate_wire_bytes_total",
}

// metricsSnap is one scrape of every node, summed.
type metricsSnap struct {
	buckets  promBuckets
	counters map[string]float64 // series (name and labels) → value
}

// scrape sums the metrics of every node; nil when no node exposes them.
func (r *runner) scrape(ctx context.Context) *metricsSnap {
	var out *metricsSnap
	seen := map[string]bool{}
	for _, u := range r.cfg.URLs {
		base := httpBase(u)
		if seen[base] {
			continue
		}
		seen[base] = true
		b := scrapeOne(ctx, r.sse, base+"/metrics", r.cfg.Token)
		if b == nil {
			continue
		}
		if out == nil {
			out = &metricsSnap{buckets: promBuckets{}, counters: map[string]float64{}}
		}
		for le, n := range b.buckets {
			out.buckets[le] += n
		}
		for k, n := range b.counters {
			out.counters[k] += n
		}
	}
	return out
}

func scrapeOne(ctx context.Context, c *http.Client, url, token string) *metricsSnap {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return parseMetrics(bufio.NewScanner(resp.Body))
}

// parseMetrics reads the publish-to-write buckets and the counters of
// counterPrefixes from Prometheus text; nil when neither is there.
func parseMetrics(sc *bufio.Scanner) *metricsSnap {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	m := &metricsSnap{counters: map[string]float64{}}
	found := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, p := range counterPrefixes {
			if strings.HasPrefix(line, p+"{") || strings.HasPrefix(line, p+" ") {
				if k := strings.LastIndexByte(line, ' '); k > 0 {
					if v, err := strconv.ParseFloat(line[k+1:], 64); err == nil {
						m.counters[line[:k]] += v
						found = true
					}
				}
			}
		}
		if !strings.HasPrefix(line, publishToWrite+"{") {
			continue
		}
		i := strings.Index(line, `le="`)
		if i < 0 {
			continue
		}
		rest := line[i+4:]
		j := strings.IndexByte(rest, '"')
		k := strings.LastIndexByte(line, ' ')
		if j < 0 || k < 0 {
			continue
		}
		le, err1 := strconv.ParseFloat(rest[:j], 64) // "+Inf" parses as +Inf
		n, err2 := strconv.ParseFloat(line[k+1:], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if m.buckets == nil {
			m.buckets = promBuckets{}
		}
		m.buckets[le] += n
		found = true
	}
	if !found {
		return nil
	}
	return m
}

// counterDelta is the change of every counter between two scrapes, zero
// changes left out.
func counterDelta(before, after *metricsSnap) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after.counters {
		if d := v - before.counters[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// serverLatency turns the difference of two scrapes into quantiles, each
// the upper bound of the bucket it falls in (coarse: the server's buckets).
func serverLatency(before, after promBuckets) *ServerLatencyMS {
	if len(after) == 0 {
		return nil
	}
	les := slices.Sorted(maps.Keys(after))
	cum := make([]float64, len(les))
	for i, le := range les {
		cum[i] = after[le] - before[le]
	}
	total := cum[len(cum)-1]
	if total <= 0 {
		return &ServerLatencyMS{}
	}
	q := func(p float64) float64 {
		for i, c := range cum {
			if c >= p*total {
				if math.IsInf(les[i], 1) {
					return math.Inf(1)
				}
				return les[i] * 1000
			}
		}
		return math.Inf(1)
	}
	s := &ServerLatencyMS{Count: int64(total), P50: q(0.5), P90: q(0.9), P99: q(0.99), P999: q(0.999)}
	for _, v := range []*float64{&s.P50, &s.P90, &s.P99, &s.P999} {
		if math.IsInf(*v, 1) {
			*v = -1 // beyond the last finite bucket; JSON has no infinity
		}
	}
	return s
}

// ServerLatencyMS is the server's publish-to-write latency over the window,
// in milliseconds; each quantile is the upper bound of its bucket, -1 when
// beyond the last finite one.
type ServerLatencyMS struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_le"`
	P90   float64 `json:"p90_le"`
	P99   float64 `json:"p99_le"`
	P999  float64 `json:"p999_le"`
}

// httpBase is a node URL's scheme and host, in http(s) form.
func httpBase(u string) string {
	u = strings.Replace(u, "ws://", "http://", 1)
	u = strings.Replace(u, "wss://", "https://", 1)
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			u = u[:i+3+j]
		}
	}
	return u
}
