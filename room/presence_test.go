package room

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/roomd/roomd/protocol"
)

// presDeltas returns the presence events r got, as (join, leave, upd) conn ids.
type delta struct{ join, leave, upd []string }

func presDeltas(t *testing.T, r *recorder) []delta {
	t.Helper()
	var out []delta
	for _, ev := range r.of(KindPres) {
		f := frame(t, ev)
		if f.T != protocol.TypePres || f.R != ev.Room {
			t.Fatalf("pres frame %+v", f)
		}
		out = append(out, delta{conns(ev.Join), ev.Leave, conns(ev.Upd)})
	}
	return out
}

func wantDeltas(t *testing.T, r *recorder, want ...delta) {
	t.Helper()
	got := presDeltas(t, r)
	if len(got) != len(want) {
		t.Fatalf("got %d presence deltas %+v, want %+v", len(got), got, want)
	}
	for i := range got {
		if !eqStrs(got[i].join, want[i].join) || !eqStrs(got[i].leave, want[i].leave) || !eqStrs(got[i].upd, want[i].upd) {
			t.Fatalf("delta %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func eqStrs(a, b []string) bool {
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

func TestPresenceJoinUpdateLeave(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua", withPresence(mp(t, "hi")), func(r *JoinRequest) { r.Info = mp(t, map[string]string{"name": "Ann"}) })
	o := join(t, m, "r", "o", "", observer)
	b := join(t, m, "r", "b", "ub")
	if got := conns(b.joined(t).Presence); !eqStrs(got, []string{"a", "b"}) {
		t.Fatalf("b's snapshot %v", got)
	}
	if got := o.joined(t).Presence; len(got) != 1 || got[0].U != "ua" || !bytes.Equal(got[0].D, mp(t, "hi")) || got[0].I == nil {
		t.Fatalf("o's snapshot %+v", got)
	}
	wantDeltas(t, a, delta{join: []string{"b"}})
	wantDeltas(t, o, delta{join: []string{"b"}})
	wantDeltas(t, b)

	if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: "b", Data: mp(t, "typing")}); err != nil {
		t.Fatal(err)
	}
	wantDeltas(t, a, delta{join: []string{"b"}}, delta{upd: []string{"b"}})
	wantDeltas(t, b)
	if ev := a.of(KindPres)[1]; !bytes.Equal(ev.Upd[0].D, mp(t, "typing")) || ev.Upd[0].U != "ub" {
		t.Fatalf("upd %+v", ev.Upd)
	}
	ms, ok := m.Presence("r")
	if !ok || !eqStrs(conns(ms), []string{"a", "b"}) || !bytes.Equal(ms[1].D, mp(t, "typing")) {
		t.Fatalf("Presence %+v", ms)
	}

	m.Leave("r", b)
	wantDeltas(t, a, delta{join: []string{"b"}}, delta{upd: []string{"b"}}, delta{leave: []string{"b"}})
	wantDeltas(t, b)
	m.Leave("r", o) // an observer leaves without a delta
	wantDeltas(t, a, delta{join: []string{"b"}}, delta{upd: []string{"b"}}, delta{leave: []string{"b"}})
	if ms, _ := m.Presence("r"); !eqStrs(conns(ms), []string{"a"}) {
		t.Fatalf("Presence %+v", ms)
	}
	// After leaving, nothing more arrives.
	pub(t, m, "r", "a", 1)
	if n := len(b.of(KindMsg)); n != 0 {
		t.Fatal("b got a message after leaving")
	}
	if _, ok := m.Presence("nope"); ok {
		t.Fatal("presence of a missing room")
	}
}

func TestNoPresence(t *testing.T) {
	m := newManager(t, Config{Namespaces: map[string]Namespace{"q": {NoPresence: true}}})
	a := join(t, m, "q:1", "a", "ua")
	b := join(t, m, "q:1", "b", "ub")
	if j := b.joined(t); j.Presence == nil || len(j.Presence) != 0 {
		t.Fatalf("snapshot %+v", j.Presence)
	}
	m.Leave("q:1", b)
	wantDeltas(t, a)
	if ms, ok := m.Presence("q:1"); !ok || len(ms) != 0 {
		t.Fatalf("Presence %+v", ms)
	}
	if info, _ := m.Info("q:1"); info.Members != 1 {
		t.Fatalf("members %d", info.Members)
	}
}

func TestGraceTakeoverNoFlicker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{PresenceGrace: 5 * time.Second})
		a := join(t, m, "r", "a", "ua")
		b := join(t, m, "r", "b", "ub", withPresence(mp(t, 1)))
		m.Drop("r", b)
		pub(t, m, "r", "a", "while b is away")
		if n := len(b.of(KindMsg)); n != 0 {
			t.Fatal("a dropped subscriber got an event")
		}
		ms, _ := m.Presence("r")
		if !eqStrs(conns(ms), []string{"a", "b"}) {
			t.Fatalf("graced entry not in snapshot: %v", conns(ms))
		}
		_, err := m.Publish(PublishRequest{Room: "r", Conn: "b", Data: mp(t, 1)})
		wantCode(t, err, protocol.CodeNotJoined)

		time.Sleep(3 * time.Second)
		b2 := join(t, m, "r", "b", "ub", withPresence(mp(t, 1)))
		if !eqStrs(conns(b2.joined(t).Presence), []string{"a", "b"}) {
			t.Fatal("takeover snapshot")
		}
		time.Sleep(10 * time.Second) // past the first grace: its timer must not fire
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}}) // only the original join
		pub(t, m, "r", "b", "back")
		if n := len(b2.of(KindMsg)); n != 1 {
			t.Fatalf("b2 got %d msgs", n)
		}

		// Takeover with changed presence data: one upd, no leave/join.
		m.Drop("r", b2)
		time.Sleep(time.Second)
		join(t, m, "r", "b", "ub", withPresence(mp(t, 2)))
		wantDeltas(t, a, delta{join: []string{"b"}}, delta{upd: []string{"b"}})
	})
}

func TestGraceExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{PresenceGrace: 5 * time.Second})
		a := join(t, m, "r", "a", "ua")
		b := join(t, m, "r", "b", "ub")
		m.Drop("r", b)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}}, delta{leave: []string{"b"}})
		if ms, _ := m.Presence("r"); !eqStrs(conns(ms), []string{"a"}) {
			t.Fatalf("presence %v", conns(ms))
		}
		if n := len(b.all()); n != 1 {
			t.Fatalf("dropped b got %d events, want only joined", n)
		}
		// A rejoin after the grace is a new join.
		join(t, m, "r", "b", "ub")
		wantDeltas(t, a, delta{join: []string{"b"}}, delta{leave: []string{"b"}}, delta{join: []string{"b"}})
	})
}

func TestNoGrace(t *testing.T) {
	m := newManager(t, Config{PresenceGrace: -1})
	a := join(t, m, "r", "a", "ua")
	b := join(t, m, "r", "b", "ub")
	m.Drop("r", b)
	wantDeltas(t, a, delta{join: []string{"b"}}, delta{leave: []string{"b"}})
}

func TestLiveTakeover(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b1 := join(t, m, "r", "b", "ub")
	b2 := join(t, m, "r", "b", "ub") // the same connection id, another subscriber
	pub(t, m, "r", "a", 1)
	if len(b1.of(KindMsg)) != 0 || len(b2.of(KindMsg)) != 1 {
		t.Fatal("old subscriber not detached")
	}
	wantDeltas(t, a, delta{join: []string{"b"}})
	wantDeltas(t, b1)
	// The old subscriber's late Drop or Leave does not touch the new one.
	m.Drop("r", b1)
	m.Leave("r", b1)
	pub(t, m, "r", "a", 2)
	if len(b2.of(KindMsg)) != 2 {
		t.Fatal("new subscriber lost by the old one's leave")
	}
	wantDeltas(t, a, delta{join: []string{"b"}})
}

func TestTakeoverByAnotherUser(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b := join(t, m, "r", "b", "ub")
	m.Drop("r", b)
	join(t, m, "r", "b", "mallory")
	// The entry is replaced: one upd that carries the new user.
	wantDeltas(t, a, delta{join: []string{"b"}}, delta{upd: []string{"b"}})
	ms, _ := m.Presence("r")
	if len(ms) != 2 || ms[1].U != "mallory" {
		t.Fatalf("presence %+v", ms)
	}
	if got := a.of(KindPres)[1].Upd[0].U; got != "mallory" {
		t.Fatalf("join of %q", got)
	}
}

func TestKick(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "r", "a", "ua")
	b1 := join(t, m, "r", "b1", "ub")
	b2 := join(t, m, "r", "b2", "ub")
	b3 := join(t, m, "r", "b3", "ub")
	m.Drop("r", b3) // graced: removed too, without an event
	o := join(t, m, "r", "o", "ub", observer)
	if n := m.Kick("r", "ub", protocol.CodeKicked, "bye now"); n != 3 {
		t.Fatalf("kicked %d, want 3", n)
	}
	for _, b := range []*recorder{b1, b2} {
		left := b.of(KindLeft)
		if len(left) != 1 || left[0].Code != protocol.CodeKicked || left[0].Msg != "bye now" || left[0].Room != "r" {
			t.Fatalf("left events %+v", left)
		}
	}
	if len(b3.of(KindLeft)) != 0 || len(o.of(KindLeft)) != 0 {
		t.Fatal("a detached subscriber or an observer got left")
	}
	wantDeltas(t, a, delta{join: []string{"b1"}}, delta{join: []string{"b2"}}, delta{join: []string{"b3"}},
		delta{leave: []string{"b1", "b2", "b3"}})
	if info, _ := m.Info("r"); info.Members != 1 || info.Observers != 1 {
		t.Fatalf("info %+v", info)
	}
	_, err := m.Publish(PublishRequest{Room: "r", Conn: "b1", Data: mp(t, 1)})
	wantCode(t, err, protocol.CodeNotJoined)
	pub(t, m, "r", "a", 1)
	if len(b1.of(KindMsg)) != 0 {
		t.Fatal("kicked subscriber still gets events")
	}
	if n := m.Kick("r", "nobody", protocol.CodeKicked, ""); n != 0 {
		t.Fatal(n)
	}
	if n := m.Kick("nope", "ua", protocol.CodeKicked, ""); n != 0 {
		t.Fatal(n)
	}
	if n := m.Kick("r", "", protocol.CodeKicked, ""); n != 0 {
		t.Fatal(n)
	}
	// A kicked member may join again.
	join(t, m, "r", "b1", "ub")
}

func TestEndGraceLeavesAtOnce(t *testing.T) {
	m := newManager(t, Config{PresenceGrace: time.Hour})
	a := join(t, m, "chat:g", "a", "ua")
	b := join(t, m, "chat:g", "b", "ub")
	if m.EndGrace("chat:g", "a") {
		t.Fatal("ended the grace of a live member")
	}
	m.Drop("chat:g", a)
	before := len(b.of(KindPres))
	if !m.EndGrace("chat:g", "a") {
		t.Fatal("a dropped member's grace did not end")
	}
	pres := b.of(KindPres)
	if len(pres) != before+1 || len(pres[len(pres)-1].Leave) != 1 || pres[len(pres)-1].Leave[0] != "a" {
		t.Fatalf("leave not broadcast: %+v", pres)
	}
	if members, _ := m.Presence("chat:g"); len(members) != 1 {
		t.Fatalf("presence %+v", members)
	}
	if m.EndGrace("chat:g", "a") || m.EndGrace("chat:none", "a") {
		t.Fatal("EndGrace twice, or on a missing room, did something")
	}
}
