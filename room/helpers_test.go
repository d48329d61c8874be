package room

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a thread-safe Subscriber that keeps every event it is given.
type recorder struct {
	conn string // a member's: its own presence changes are stripped, as a session does
	mu   sync.Mutex
	evs  []*Event
}

var _ Subscriber = (*recorder)(nil)

func (r *recorder) Deliver(ev *Event) {
	if ev.Mentions(r.conn) {
		if ev = ev.Without(r.conn); ev == nil {
			return
		}
	}
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) all() []*Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Event(nil), r.evs...)
}

func (r *recorder) of(kinds ...Kind) []*Event {
	var out []*Event
	for _, ev := range r.all() {
		for _, k := range kinds {
			if ev.Kind == k {
				out = append(out, ev)
			}
		}
	}
	return out
}

// durable returns the seqs of the msg and state events received.
func (r *recorder) durable() []uint64 {
	var out []uint64
	for _, ev := range r.of(KindMsg, KindState) {
		out = append(out, ev.Seq)
	}
	return out
}

// joined returns the Joined of the first KindJoined event received.
func (r *recorder) joined(t *testing.T) *Joined {
	t.Helper()
	js := r.of(KindJoined)
	if len(js) == 0 {
		t.Fatal("no joined event")
	}
	return js[0].Joined
}

// clock is a fake Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newManager makes a Manager for a test; presence changes go out at once
// unless cfg sets a window (presbatch_test.go tests the windows).
func newManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	if cfg.PresenceWindow == 0 {
		cfg.PresenceWindow = -1
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func mp(t testing.TB, v any) protocol.Raw {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func join(t testing.TB, m *Manager, room, conn, user string, opts ...func(*JoinRequest)) *recorder {
	t.Helper()
	req := JoinRequest{Room: room, Conn: conn, User: user}
	for _, o := range opts {
		o(&req)
	}
	rec := &recorder{}
	if !req.Observer {
		rec.conn = conn
	}
	if err := m.Join(req, rec); err != nil {
		t.Fatalf("join %s as %s: %v", room, conn, err)
	}
	return rec
}

func withSince(e string, s uint64) func(*JoinRequest) {
	return func(r *JoinRequest) { r.Since = &protocol.Since{E: e, S: s} }
}

func withHistory(h int) func(*JoinRequest) { return func(r *JoinRequest) { r.History = h } }

func withPresence(p protocol.Raw) func(*JoinRequest) { return func(r *JoinRequest) { r.Presence = p } }

func observer(r *JoinRequest) { r.Observer = true }

func pub(t testing.TB, m *Manager, room, conn string, v any) uint64 {
	t.Helper()
	seq, err := m.Publish(PublishRequest{Room: room, Conn: conn, Data: mp(t, v)})
	if err != nil {
		t.Fatalf("publish in %s by %s: %v", room, conn, err)
	}
	return seq
}

func apiPub(t testing.TB, m *Manager, room string, v any) uint64 {
	t.Helper()
	seq, err := m.Publish(PublishRequest{Room: room, Data: mp(t, v), FromAPI: true})
	if err != nil {
		t.Fatalf("API publish in %s: %v", room, err)
	}
	return seq
}

func codeOf(err error) (protocol.Code, bool) {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code, true
	}
	return 0, false
}

func wantCode(t *testing.T, err error, want protocol.Code) {
	t.Helper()
	got, ok := codeOf(err)
	if !ok {
		t.Fatalf("err = %v, want a *protocol.Error with code %v", err, want)
	}
	if got != want {
		t.Fatalf("err = %v, want code %v", err, want)
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func eqSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func conns(ms []protocol.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.C)
	}
	sort.Strings(out)
	return out
}

// frame decodes an event's shared frame.
func frame(t *testing.T, ev *Event) protocol.Frame {
	t.Helper()
	var f protocol.Frame
	if err := protocol.DecodeFrame(ev.Frame, &f); err != nil {
		t.Fatalf("decode %v frame: %v", ev.Kind, err)
	}
	return f
}
