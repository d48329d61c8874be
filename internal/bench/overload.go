package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The overload figures of a fanout run (docs/OPERATIONS.md, "Overload"):
// a quiet room among flooded ones (Config.QuietRate), and publishes
// through the HTTP API (Config.APIRate).

// QuietStats is what the quiet room's publisher got.
type QuietStats struct {
	Rate      float64 `json:"rate"`
	Published int64   `json:"published"`
	Rejected  int64   `json:"rejected"`
	Unacked   int64   `json:"unacked"`
}

// APIStats counts the measured HTTP API publishes by answer.
type APIStats struct {
	Rate float64 `json:"rate"`
	Sent int64   `json:"sent"`
	OK   int64   `json:"ok"`
	// Refused: 429 or 503 with a Retry-After header; NoRetryAfter: 429 or
	// 503 without one.
	Refused      int64 `json:"refused"`
	NoRetryAfter int64 `json:"no_retry_after"`
	Other        int64 `json:"other"`  // any other status
	Failed       int64 `json:"failed"` // no answer: transport error or timeout
	// MaxMS is the longest request, from its send to its answer's end.
	MaxMS float64 `json:"max_ms"`
}

// apiTimeout bounds one API publish: a request still unanswered then is
// counted failed (hung).
const apiTimeout = 10 * time.Second

// addQuietRoom adds the quiet room: subs readers and one publisher at
// rate, kept out of the flooded rooms' rate. Fanout only.
func (r *runner) addQuietRoom(subs int, rate float64) {
	rs := &roomState{idx: len(r.rooms), name: r.cfg.RoomPrefix + "-quiet"}
	r.rooms = append(r.rooms, rs)
	r.quiet = rs
	for range subs {
		r.addConn(rs, true, 0)
	}
	r.addConn(rs, false, rate)
}

// quietStats sums the quiet room's publisher counts.
func (r *runner) quietStats() *QuietStats {
	if r.quiet == nil {
		return nil
	}
	q := &QuietStats{Rate: r.cfg.QuietRate}
	for _, p := range r.quiet.pubs {
		q.Published += p.acked.Load()
		q.Rejected += p.rejected.Load()
		q.Unacked += p.measured.Load() - p.acked.Load() - p.rejected.Load()
	}
	return q
}

// apiPublishers posts to the first room's messages at cfg.APIRate in all,
// from 4 goroutines, from measure until stop, and returns the counts once
// every request ended.
func (r *runner) apiPublishers(ctx context.Context, measure, stop time.Time) *APIStats {
	const workers = 4
	st := &APIStats{Rate: r.cfg.APIRate}
	var maxNS atomic.Int64
	var sent, ok, refused, noRA, other, failed atomic.Int64
	client := &http.Client{Timeout: apiTimeout}
	if tc := r.tlsConfig(); tc != nil {
		client.Transport = &http.Transport{TLSClientConfig: tc}
		defer client.CloseIdleConnections()
	}
	body := fmt.Sprintf(`{"data":%q}`, strings.Repeat("x", max(1, r.cfg.Size-8)))
	url := strings.TrimRight(r.cfg.URLs[0], "/") + "/v1/rooms/" + r.rooms[0].name + "/messages"
	interval := time.Duration(float64(time.Second) * workers / r.cfg.APIRate)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := measure.Add(interval * time.Duration(w) / workers)
			for {
				if d := time.Until(next); d > 0 {
					if !sleepCtx(ctx, d) {
						return
					}
				}
				if !time.Now().Before(stop) {
					return
				}
				next = next.Add(interval)
				t0 := time.Now()
				sent.Add(1)
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if d := time.Since(t0).Nanoseconds(); d > maxNS.Load() {
					maxNS.Store(d) // racy max across workers: close enough for a report
				}
				switch {
				case resp.StatusCode == http.StatusOK:
					ok.Add(1)
				case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") != "" {
						refused.Add(1)
					} else {
						noRA.Add(1)
					}
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	st.Sent, st.OK, st.Refused, st.NoRetryAfter = sent.Load(), ok.Load(), refused.Load(), noRA.Load()
	st.Other, st.Failed = other.Load(), failed.Load()
	st.MaxMS = float64(maxNS.Load()) / 1e6
	return st
}
