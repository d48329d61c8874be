package room

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/roomd/roomd/protocol"
)

func TestSeqGaplessSameOrderConcurrentPublishers(t *testing.T) {
	m := newManager(t, Config{})
	const room = "chat:busy"
	subs := []*recorder{join(t, m, room, "c1", "u1"), join(t, m, room, "c2", "u2"), join(t, m, room, "c3", "u3")}
	const workers, each = 16, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]bool{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var seq uint64
				var err error
				if w%2 == 0 {
					seq, err = m.Publish(PublishRequest{Room: room, Conn: fmt.Sprintf("c%d", 1+w%3), Data: mp(t, i)})
				} else {
					seq, err = m.SetState(SetRequest{Room: room, Key: fmt.Sprint(w), Value: mp(t, i), FromAPI: true})
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if got[seq] {
					t.Errorf("seq %d returned twice", seq)
				}
				got[seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	const n = workers * each
	if len(got) != n {
		t.Fatalf("%d distinct seqs, want %d", len(got), n)
	}
	want := seqRange(1, n)
	ref := subs[0].of(KindMsg, KindState)
	for i, s := range subs {
		if seqs := s.durable(); !eqSeqs(seqs, want) {
			t.Fatalf("sub %d: %d events, not 1..%d in order", i, len(seqs), n)
		}
		for j, ev := range s.of(KindMsg, KindState) {
			if ev != ref[j] {
				t.Fatalf("sub %d: event %d is not the shared *Event", i, j)
			}
		}
	}
	if info, _ := m.Info(room); info.Seq != n {
		t.Fatalf("Info.Seq = %d, want %d", info.Seq, n)
	}
}

func TestEventFramesEncodedOnce(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b := join(t, m, "r", "b", "ub")
	seq := pub(t, m, "r", "a", "hi")
	ea, eb := a.of(KindMsg), b.of(KindMsg)
	if len(ea) != 1 || len(eb) != 1 || ea[0] != eb[0] {
		t.Fatalf("want one shared msg event, got %v %v", ea, eb)
	}
	ev := ea[0]
	f := frame(t, ev)
	if f.T != protocol.TypeMsg || f.R != "r" || f.S != seq || f.U != "" || f.C != "a" || !bytes.Equal(f.D, mp(t, "hi")) || f.TS != ev.TS || ev.TS == 0 {
		t.Fatalf("frame %+v does not match event %+v", f, ev)
	}
	if ev.Epoch == "" || len(ev.Epoch) != 12 {
		t.Fatalf("epoch %q", ev.Epoch)
	}
}

func TestPublishCopiesPayload(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "")
	buf := mp(t, "abc")
	if _, err := m.Publish(PublishRequest{Room: "r", Conn: "a", Data: buf}); err != nil {
		t.Fatal(err)
	}
	buf[1] = 'X' // the caller reuses its buffer
	if got := a.of(KindMsg)[0].Data; !bytes.Equal(got, mp(t, "abc")) {
		t.Fatalf("history aliases the caller's buffer: %q", got)
	}
}

func TestAtomicJoinUnderLoad(t *testing.T) {
	m := newManager(t, Config{Default: Namespace{HistorySize: 10_000}})
	const room = "chat:load"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var published atomic.Uint64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := m.Publish(PublishRequest{Room: room, Data: mp(t, i), FromAPI: true}); err != nil {
					t.Error(err)
					return
				}
				published.Add(1)
			}
		}()
	}
	for published.Load() < 50 {
		// let the log get going
	}
	const joiners = 40
	recs := make([]*recorder, joiners)
	var jw sync.WaitGroup
	for i := range joiners {
		jw.Add(1)
		go func() {
			defer jw.Done()
			rec := &recorder{}
			req := JoinRequest{Room: room, Conn: fmt.Sprintf("j%d", i), User: "u", Observer: i%2 == 0}
			if i%3 == 0 {
				info, _ := m.Info(room)
				req.Since = &protocol.Since{E: info.Epoch, S: info.Seq - 5}
			}
			if err := m.Join(req, rec); err != nil {
				t.Error(err)
			}
			recs[i] = rec
		}()
	}
	jw.Wait()
	for published.Load() < 2000 {
	}
	close(stop)
	wg.Wait()
	for i, rec := range recs {
		evs := rec.all()
		if len(evs) == 0 || evs[0].Kind != KindJoined {
			t.Fatalf("joiner %d: first event is not joined", i)
		}
		j := evs[0].Joined
		if !j.Reset {
			if len(j.Log) == 0 || j.Log[len(j.Log)-1].Seq != j.Seq {
				t.Fatalf("joiner %d: resumed log does not reach seq %d", i, j.Seq)
			}
			for k, ev := range j.Log {
				if ev.Seq != j.Log[0].Seq+uint64(k) {
					t.Fatalf("joiner %d: resumed log has a gap", i)
				}
			}
		}
		next := j.Seq + 1
		for _, ev := range evs[1:] {
			if ev.Kind != KindMsg {
				continue
			}
			if ev.Seq != next {
				t.Fatalf("joiner %d: joined at seq %d, live event %d, want %d", i, j.Seq, ev.Seq, next)
			}
			next++
		}
		if next-1 != published.Load() {
			t.Fatalf("joiner %d: saw up to %d, published %d", i, next-1, published.Load())
		}
	}
}

func TestEphemeral(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b := join(t, m, "r", "b", "ub")
	o := join(t, m, "r", "o", "", observer)
	seq, err := m.Publish(PublishRequest{Room: "r", Conn: "a", User: "ua", Data: mp(t, "cursor"), Ephemeral: true, Key: "k"})
	if err != nil || seq != 0 {
		t.Fatalf("eph publish = %d, %v", seq, err)
	}
	if n := len(a.of(KindEph)); n != 0 {
		t.Fatalf("sender got its own eph %d times", n)
	}
	for _, r := range []*recorder{b, o} {
		evs := r.of(KindEph)
		if len(evs) != 1 || evs[0].Seq != 0 || evs[0].User != "ua" {
			t.Fatalf("eph events %+v", evs)
		}
		if f := frame(t, evs[0]); f.T != protocol.TypeEph || f.C != "a" || f.U != "ua" {
			t.Fatalf("eph frame %+v", f)
		}
	}
	// Same key again: ephemeral messages are never deduped.
	if _, err := m.Publish(PublishRequest{Room: "r", Conn: "a", Data: mp(t, 1), Ephemeral: true, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if n := len(b.of(KindEph)); n != 2 {
		t.Fatalf("b got %d eph, want 2", n)
	}
	if _, evs, _ := m.History("r", 0, 0); len(evs) != 0 {
		t.Fatalf("eph in history: %d events", len(evs))
	}
	if info, _ := m.Info("r"); info.Seq != 0 {
		t.Fatalf("eph took a seq: %d", info.Seq)
	}
	// From the API, everybody gets it.
	if _, err := m.Publish(PublishRequest{Room: "r", Data: mp(t, 2), Ephemeral: true, FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(a.of(KindEph)); n != 1 {
		t.Fatalf("a got %d API eph, want 1", n)
	}
	c := join(t, m, "r", "c", "uc", withHistory(10))
	if j := c.joined(t); len(j.Log) != 0 {
		t.Fatalf("eph replayed on join: %d", len(j.Log))
	}
}

func TestDeliveryTargets(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b := join(t, m, "r", "b", "ub")
	o := join(t, m, "r", "o", "", observer)
	pub(t, m, "r", "a", 1)
	if _, err := m.SetState(SetRequest{Room: "r", Conn: "b", Key: "k", Value: mp(t, 1)}); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*recorder{"a": a, "b": b, "o": o} {
		if s := r.durable(); !eqSeqs(s, []uint64{1, 2}) {
			t.Fatalf("%s got seqs %v, want [1 2] (sender included)", name, s)
		}
	}
	if info, _ := m.Info("r"); info.Members != 2 || info.Observers != 1 {
		t.Fatalf("info %+v", info)
	}
	// Observers cannot publish: they are not members.
	_, err := m.Publish(PublishRequest{Room: "r", Conn: "o", Data: mp(t, 1)})
	wantCode(t, err, protocol.CodeNotJoined)
}

func TestErrorCodes(t *testing.T) {
	ns := Namespace{MaxMessageBytes: 32, MaxPresenceBytes: 16, StateMaxKeys: 2, StateMaxBytes: 22, StateMaxValueBytes: 20}
	clk := newClock() // the rate limiter must not refill during the test
	m := newManager(t, Config{Now: clk.Now, Default: ns, Namespaces: map[string]Namespace{
		"api":   {APIPublishOnly: true},
		"quiet": {NoPresence: true},
		"small": {MaxMembers: 1},
		"slow":  {PublishRate: 1, PublishBurst: 1},
	}})
	join(t, m, "r", "c", "u")
	join(t, m, "slow:1", "c", "u")
	join(t, m, "small:1", "c", "u")
	join(t, m, "api:1", "c", "u")
	join(t, m, "quiet:1", "c", "u")
	if _, err := m.SetState(SetRequest{Room: "r", Conn: "c", Key: "k1", Value: mp(t, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: "r", Conn: "c", Key: "k2", Value: mp(t, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(PublishRequest{Room: "slow:1", Conn: "c", Data: mp(t, 1)}); err != nil {
		t.Fatal(err)
	}
	ext := protocol.Raw{0xd4, 0x01, 0x00} // fixext1
	big := mp(t, strings.Repeat("x", 40))
	pubErr := func(req PublishRequest) func() error {
		return func() error { _, err := m.Publish(req); return err }
	}
	setErr := func(req SetRequest) func() error {
		return func() error { _, err := m.SetState(req); return err }
	}
	rec := &recorder{}
	for _, tc := range []struct {
		name string
		call func() error
		want protocol.Code
	}{
		{"join invalid room", func() error { return m.Join(JoinRequest{Room: "bad room", Conn: "x"}, rec) }, protocol.CodeInvalidRoom},
		{"join empty room", func() error { return m.Join(JoinRequest{Room: "", Conn: "x"}, rec) }, protocol.CodeInvalidRoom},
		{"pub invalid room", pubErr(PublishRequest{Room: "a/b", Conn: "c"}), protocol.CodeInvalidRoom},
		{"set invalid room", setErr(SetRequest{Room: strings.Repeat("a", 129), Key: "k"}), protocol.CodeInvalidRoom},
		{"pres invalid room", func() error { return m.UpdatePresence(PresenceRequest{Room: "é", Conn: "c"}) }, protocol.CodeInvalidRoom},
		{"payload too large", pubErr(PublishRequest{Room: "r", Conn: "c", Data: big}), protocol.CodeTooLarge},
		{"eph payload too large", pubErr(PublishRequest{Room: "r", Conn: "c", Data: big, Ephemeral: true}), protocol.CodeTooLarge},
		{"join presence too large", func() error {
			return m.Join(JoinRequest{Room: "r", Conn: "x", Presence: mp(t, strings.Repeat("p", 20))}, rec)
		}, protocol.CodeTooLarge},
		{"presence too large", func() error {
			return m.UpdatePresence(PresenceRequest{Room: "r", Conn: "c", Data: mp(t, strings.Repeat("p", 20))})
		}, protocol.CodeTooLarge},
		{"state value too large", setErr(SetRequest{Room: "r", Conn: "c", Key: "k1", Value: mp(t, strings.Repeat("v", 20))}), protocol.CodeTooLarge},
		{"state total too large", setErr(SetRequest{Room: "r", Conn: "c", Key: "k1", Value: mp(t, strings.Repeat("v", 18))}), protocol.CodeTooLarge},
		{"idempotency key too long", pubErr(PublishRequest{Room: "r", Conn: "c", Data: mp(t, 1), Key: strings.Repeat("k", 65)}), protocol.CodeTooLarge},
		{"state key too long", setErr(SetRequest{Room: "r", Conn: "c", Key: strings.Repeat("k", 257), Value: mp(t, 1)}), protocol.CodeTooLarge},
		{"state key empty", setErr(SetRequest{Room: "r", Conn: "c", Value: mp(t, 1)}), protocol.CodeBadRequest},
		{"payload ext type", pubErr(PublishRequest{Room: "r", Conn: "c", Data: ext}), protocol.CodeBadRequest},
		{"state ext type", setErr(SetRequest{Room: "r", Conn: "c", Key: "k1", Value: ext}), protocol.CodeBadRequest},
		{"presence ext type", func() error { return m.UpdatePresence(PresenceRequest{Room: "r", Conn: "c", Data: ext}) }, protocol.CodeBadRequest},
		{"join presence ext type", func() error { return m.Join(JoinRequest{Room: "r", Conn: "x", Presence: ext}, rec) }, protocol.CodeBadRequest},
		{"payload two values", pubErr(PublishRequest{Room: "r", Conn: "c", Data: protocol.Raw{0x01, 0x02}}), protocol.CodeBadRequest},
		{"member without conn", func() error { return m.Join(JoinRequest{Room: "r"}, rec) }, protocol.CodeBadRequest},
		{"state key count", setErr(SetRequest{Room: "r", Conn: "c", Key: "k3", Value: mp(t, 1)}), protocol.CodeLimit},
		{"room full", func() error { return m.Join(JoinRequest{Room: "small:1", Conn: "x"}, rec) }, protocol.CodeRoomFull},
		{"api publish only, pub", pubErr(PublishRequest{Room: "api:1", Conn: "c", Data: mp(t, 1)}), protocol.CodeForbidden},
		{"api publish only, eph", pubErr(PublishRequest{Room: "api:1", Conn: "c", Data: mp(t, 1), Ephemeral: true}), protocol.CodeForbidden},
		{"api publish only, set", setErr(SetRequest{Room: "api:1", Conn: "c", Key: "k", Value: mp(t, 1)}), protocol.CodeForbidden},
		{"presence off", func() error { return m.UpdatePresence(PresenceRequest{Room: "quiet:1", Conn: "c", Data: mp(t, 1)}) }, protocol.CodeForbidden},
		{"rate limited", pubErr(PublishRequest{Room: "slow:1", Conn: "c", Data: mp(t, 2)}), protocol.CodeRateLimited},
		{"rate limited eph", pubErr(PublishRequest{Room: "slow:1", Conn: "c", Data: mp(t, 2), Ephemeral: true}), protocol.CodeRateLimited},
		{"rate limited set", setErr(SetRequest{Room: "slow:1", Conn: "c", Key: "k", Value: mp(t, 2)}), protocol.CodeRateLimited},
		{"pub no such room", pubErr(PublishRequest{Room: "nope", Conn: "c", Data: mp(t, 1)}), protocol.CodeNotJoined},
		{"pub not a member", pubErr(PublishRequest{Room: "r", Conn: "other", Data: mp(t, 1)}), protocol.CodeNotJoined},
		{"eph not a member", pubErr(PublishRequest{Room: "r", Conn: "other", Data: mp(t, 1), Ephemeral: true}), protocol.CodeNotJoined},
		{"set no such room", setErr(SetRequest{Room: "nope", Conn: "c", Key: "k", Value: mp(t, 1)}), protocol.CodeNotJoined},
		{"set not a member", setErr(SetRequest{Room: "r", Conn: "other", Key: "k", Value: mp(t, 1)}), protocol.CodeNotJoined},
		{"pres no such room", func() error { return m.UpdatePresence(PresenceRequest{Room: "nope", Conn: "c"}) }, protocol.CodeNotJoined},
		{"pres not a member", func() error { return m.UpdatePresence(PresenceRequest{Room: "r", Conn: "other"}) }, protocol.CodeNotJoined},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.want) })
	}
	if _, ok := m.Info("nope"); ok {
		t.Fatal("a refused client write created a room")
	}
	if n := len(rec.all()); n != 0 {
		t.Fatalf("refused joins delivered %d events", n)
	}
	// The API is neither forbidden nor rate limited.
	for range 3 {
		apiPub(t, m, "api:1", 1)
		apiPub(t, m, "slow:1", 1)
	}
	if _, err := m.SetState(SetRequest{Room: "api:1", Key: "k", Value: mp(t, 1), FromAPI: true}); err != nil {
		t.Fatal(err)
	}
}

func TestAlreadyJoined(t *testing.T) {
	m := newManager(t, Config{})
	rec := join(t, m, "r", "c", "u")
	wantCode(t, m.Join(JoinRequest{Room: "r", Conn: "c", User: "u"}, rec), protocol.CodeAlreadyJoined)
	wantCode(t, m.Join(JoinRequest{Room: "r", Conn: "c2", Observer: true}, rec), protocol.CodeAlreadyJoined)
	o := join(t, m, "r", "", "", observer)
	wantCode(t, m.Join(JoinRequest{Room: "r", Observer: true}, o), protocol.CodeAlreadyJoined)
	// After a leave, the same subscriber may join again.
	m.Leave("r", rec)
	if err := m.Join(JoinRequest{Room: "r", Conn: "c", User: "u"}, rec); err != nil {
		t.Fatal(err)
	}
}

func TestMemberLimit(t *testing.T) {
	m := newManager(t, Config{Default: Namespace{MaxMembers: 2}})
	a := join(t, m, "r", "a", "ua")
	join(t, m, "r", "b", "ub")
	wantCode(t, m.Join(JoinRequest{Room: "r", Conn: "c"}, &recorder{}), protocol.CodeRoomFull)
	join(t, m, "r", "o", "", observer) // observers do not count
	// A graced entry still counts; its takeover does not need a free place.
	m.Drop("r", a)
	wantCode(t, m.Join(JoinRequest{Room: "r", Conn: "c"}, &recorder{}), protocol.CodeRoomFull)
	join(t, m, "r", "a", "ua")
	m.Leave("r", a) // a no longer attached: nothing happens
	if info, _ := m.Info("r"); info.Members != 2 {
		t.Fatalf("members = %d", info.Members)
	}
	b2 := join(t, m, "r", "b", "ub") // live takeover
	m.Leave("r", b2)
	join(t, m, "r", "c", "uc")
}

func TestAPIWriteCreatesRoom(t *testing.T) {
	m := newManager(t, Config{})
	if seq := apiPub(t, m, "news:1", "x"); seq != 1 {
		t.Fatalf("seq %d", seq)
	}
	info, ok := m.Info("news:1")
	if !ok || info.Seq != 1 || info.Members != 0 {
		t.Fatalf("info %+v %v", info, ok)
	}
	if seq, err := m.SetState(SetRequest{Room: "news:2", Key: "k", Value: mp(t, 1), FromAPI: true}); err != nil || seq != 1 {
		t.Fatalf("API set = %d, %v", seq, err)
	}
	rec := join(t, m, "news:1", "c", "", withHistory(5))
	if j := rec.joined(t); j.Epoch != info.Epoch || len(j.Log) != 1 || !j.Reset {
		t.Fatalf("joined %+v", j)
	}
}

func TestClose(t *testing.T) {
	m, err := New(Config{PresenceGrace: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	a := join(t, m, "r", "a", "ua")
	join(t, m, "r", "b", "ub")
	m.Drop("r", a) // arms a grace timer
	apiPub(t, m, "idle", 1)
	rs := m.snapshot("")
	m.Close()
	m.Close()
	for _, r := range rs {
		r.mu.Lock()
		if !r.dead || r.idle != nil || r.members != nil {
			t.Errorf("room %s still holds timers or members after Close", r.name)
		}
		r.mu.Unlock()
	}
	wantCode(t, m.Join(JoinRequest{Room: "r", Conn: "x"}, &recorder{}), protocol.CodeShutdown)
	_, err = m.Publish(PublishRequest{Room: "r", Data: mp(t, 1), FromAPI: true})
	wantCode(t, err, protocol.CodeShutdown)
	_, err = m.SetState(SetRequest{Room: "r", Key: "k", FromAPI: true})
	wantCode(t, err, protocol.CodeShutdown)
	_, err = m.Publish(PublishRequest{Room: "r", Conn: "b", Data: mp(t, 1)})
	wantCode(t, err, protocol.CodeShutdown)
	if _, ok := m.Info("r"); ok {
		t.Fatal("room visible after Close")
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("stats after close %+v", s)
	}
	m.Leave("r", a)
	m.Drop("r", a)
	if n := m.Kick("r", "ub", protocol.CodeKicked, ""); n != 0 {
		t.Fatal("kick after close")
	}
}

// inside reports whether sub's bytes lie within buf's.
func inside(buf, sub []byte) bool {
	if len(sub) == 0 || len(buf) == 0 {
		return false
	}
	b, s := uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

// TestPayloadHeldOnce checks that an event's Data is the payload inside its
// Frame (not a second copy) for every payload size class, and that the
// room's state holds the same bytes.
func TestPayloadHeldOnce(t *testing.T) {
	clk := newClock()
	m := newManager(t, Config{Now: clk.Now, Default: Namespace{MaxMessageBytes: 1 << 20}})
	users := []string{"", "u", strings.Repeat("u", 40), strings.Repeat("u", 300)}
	for i, u := range users {
		join(t, m, "r", fmt.Sprint(i), u)
	}
	a := join(t, m, "r", "watch", "")
	for _, size := range []int{1, 31, 200, 70_000} {
		for i, u := range users {
			data := mp(t, strings.Repeat("x", size))
			if _, err := m.Publish(PublishRequest{Room: "r", Conn: fmt.Sprint(i), User: u, Data: data}); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Publish(PublishRequest{Room: "r", Conn: fmt.Sprint(i), User: u, Data: data, Ephemeral: true}); err != nil {
				t.Fatal(err)
			}
			if size <= 200 {
				if _, err := m.SetState(SetRequest{Room: "r", Conn: fmt.Sprint(i), User: u, Key: "k", Value: data}); err != nil {
					t.Fatal(err)
				}
			}
		}
		clk.Add(time.Duration(size) * time.Hour) // vary the size of ts too
	}
	for _, ev := range a.all() {
		if ev.Kind == KindJoined || ev.Kind == KindPres {
			continue
		}
		if !inside(ev.Frame, ev.Data) {
			t.Fatalf("%v event from %q: Data is a second copy", ev.Kind, ev.User)
		}
		f := frame(t, ev)
		if !bytes.Equal(f.D, ev.Data) {
			t.Fatalf("%v event: Data differs from the frame's d", ev.Kind)
		}
	}
	st, _, _ := m.State("r")
	last := a.of(KindState)
	if !inside(last[len(last)-1].Frame, st["k"]) {
		t.Fatal("state value is not the event's bytes")
	}
	// A payload at a place the encoding does not predict is copied.
	if got := alias([]byte{1, 2, 3}, protocol.Raw{9}, 0); !bytes.Equal(got, []byte{9}) {
		t.Fatal(got)
	}
	if got := alias([]byte{1, 2, 3}, protocol.Raw{2}, uintLen(-5)); !bytes.Equal(got, []byte{2}) {
		t.Fatal(got)
	}
}

// TestRoomPublishRate: a room's own publish rate bounds its members and the
// API together, for pub, ephemeral pub and set alike; a refused write is
// not delivered, and a member over its own rate does not spend the room's.
func TestRoomPublishRate(t *testing.T) {
	clk := newClock()
	m := newManager(t, Config{Now: clk.Now, Namespaces: map[string]Namespace{
		"hot":  {RoomPublishRate: 10, RoomPublishBurst: 3},
		"both": {PublishRate: 1, PublishBurst: 1, RoomPublishRate: 10, RoomPublishBurst: 2},
	}})
	watcher := join(t, m, "hot:1", "w", "w")
	join(t, m, "hot:1", "a", "a")
	join(t, m, "hot:1", "b", "b")
	pub := func(room, conn string, eph bool) error {
		_, err := m.Publish(PublishRequest{Room: room, Conn: conn, Data: mp(t, conn), Ephemeral: eph, FromAPI: conn == ""})
		return err
	}
	for _, c := range []string{"a", "a", "b"} {
		if err := pub("hot:1", c, false); err != nil {
			t.Fatalf("publish by %s within the burst: %v", c, err)
		}
	}
	wantCode(t, pub("hot:1", "b", false), protocol.CodeRateLimited)
	wantCode(t, pub("hot:1", "a", true), protocol.CodeRateLimited)
	wantCode(t, pub("hot:1", "", false), protocol.CodeRateLimited)
	_, err := m.SetState(SetRequest{Room: "hot:1", Conn: "b", Key: "k", Value: mp(t, 1)})
	wantCode(t, err, protocol.CodeRateLimited)
	if got := watcher.durable(); len(got) != 3 {
		t.Fatalf("watcher got durable events %v, want the 3 accepted", got)
	}
	if n := len(watcher.of(KindEph)); n != 0 {
		t.Fatalf("watcher got %d refused ephemeral events", n)
	}
	clk.Add(100 * time.Millisecond) // one token back at 10/s
	if err := pub("hot:1", "", false); err != nil {
		t.Fatalf("API publish after a refill: %v", err)
	}
	wantCode(t, pub("hot:1", "a", false), protocol.CodeRateLimited)

	join(t, m, "both:1", "a", "a")
	join(t, m, "both:1", "b", "b")
	if err := pub("both:1", "a", false); err != nil {
		t.Fatal(err)
	}
	for range 3 { // over a's own rate: refused without spending the room's
		wantCode(t, pub("both:1", "a", false), protocol.CodeRateLimited)
	}
	if err := pub("both:1", "b", false); err != nil {
		t.Fatalf("b's publish took the room's second token: %v", err)
	}
	wantCode(t, pub("both:1", "", false), protocol.CodeRateLimited)
}
