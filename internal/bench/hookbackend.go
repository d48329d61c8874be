package bench

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/roomd/roomd/hooks"
)

// HookBackend is a loopback backend for roomd's hooks (roomd bench
// --hook-backend): it verifies each request's signature, allows every join
// and publish, and acknowledges every published event, timing each from
// its commit (the event's ts) to its arrival. It measures what the hooks
// cost the server: run roomd with --hook-url at it.
type HookBackend struct {
	secret []byte
	srv    *http.Server
	ln     net.Listener
	lat    *Histogram // published: commit (ts) to arrival

	mu        sync.Mutex
	calls     map[hooks.Name]int64
	badSig    int64
	seen      map[pubKey]bool
	dups      int64
	disorder  int64
	last      map[string]uint64
	first     time.Time
	lastAt    time.Time
	published int64
}

type pubKey struct {
	room string
	seq  uint64
}

// StartHookBackend listens on addr (host:port) and serves the hooks.
func StartHookBackend(addr string, secret []byte) (*HookBackend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &HookBackend{secret: secret, ln: ln, lat: NewHistogram(), calls: map[hooks.Name]int64{},
		seen: map[pubKey]bool{}, last: map[string]uint64{}}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// URL is the backend's URL (for roomd's --hook-url).
func (b *HookBackend) URL() string { return "http://" + b.ln.Addr().String() + "/" }

// Close stops the backend.
func (b *HookBackend) Close() error {
	if err := b.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (b *HookBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	hook := hooks.Name(r.Header.Get(hooks.HookHeader))
	if err := hooks.Verify(r.Header.Get(hooks.SignatureHeader), body, now, 0, b.secret); err != nil {
		b.mu.Lock()
		b.badSig++
		b.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if hook == hooks.Published {
		var ev hooks.PublishedEvent
		if json.Unmarshal(body, &ev) == nil {
			b.lat.Record(0, now.Sub(time.UnixMilli(ev.TS)))
			b.published1(ev, now)
		}
	}
	b.mu.Lock()
	b.calls[hook]++
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"allow":true}`))
}

func (b *HookBackend) published1(ev hooks.PublishedEvent, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := pubKey{ev.Room, ev.Seq}
	if b.seen[k] {
		b.dups++
		return
	}
	b.seen[k] = true
	if ev.Seq <= b.last[ev.Room] {
		b.disorder++
	}
	b.last[ev.Room] = ev.Seq
	if b.first.IsZero() {
		b.first = now
	}
	b.lastAt = now
	b.published++
}

// HookStats is what the backend saw.
type HookStats struct {
	Calls map[string]int64 `json:"calls"` // by hook
	// Published: distinct published events; per second from the first to
	// the last; Duplicates and OutOfOrder (seq not above the room's last).
	Published     int64   `json:"published"`
	PublishedPerS float64 `json:"published_per_s"`
	Duplicates    int64   `json:"duplicates"`
	OutOfOrder    int64   `json:"out_of_order"`
	BadSignatures int64   `json:"bad_signatures"`
	// Delivery is from each published event's commit (its ts, in ms) to
	// its arrival here.
	Delivery *LatencyMS `json:"delivery_ms,omitempty"`
}

// Stats returns what the backend saw so far.
func (b *HookBackend) Stats() *HookStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &HookStats{Calls: map[string]int64{}, Published: b.published, Duplicates: b.dups, OutOfOrder: b.disorder, BadSignatures: b.badSig}
	for h, n := range b.calls {
		s.Calls[string(h)] = n
	}
	if d := b.lastAt.Sub(b.first).Seconds(); d > 0 {
		s.PublishedPerS = float64(b.published-1) / d
	}
	if snap := b.lat.Snapshot(); snap.Count > 0 {
		s.Delivery = latencyOf(snap)
	}
	return s
}
