package room

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/roomd/roomd/protocol"
)

// windowed makes a Manager whose presence changes are coalesced over w,
// windows that do not grow.
func windowed(t *testing.T, w time.Duration, ns Namespace) *Manager {
	t.Helper()
	return newManager(t, Config{PresenceWindow: w, PresenceWindowMax: w, Default: ns})
}

// view applies what a member was shown (its joined snapshot, then every pres
// event) the way a client does: join and upd replace an entry, leave removes
// one, all replaces the list.
func view(t *testing.T, r *recorder) map[string]protocol.Member {
	t.Helper()
	out := map[string]protocol.Member{}
	for _, ev := range r.all() {
		switch ev.Kind {
		case KindJoined:
			for _, p := range ev.Joined.Presence {
				out[p.C] = p
			}
		case KindPres:
			if ev.All != nil {
				out = map[string]protocol.Member{}
				for _, p := range ev.All {
					out[p.C] = p
				}
			}
			for _, p := range ev.Join {
				out[p.C] = p
			}
			for _, p := range ev.Upd {
				out[p.C] = p
			}
			for _, c := range ev.Leave {
				delete(out, c)
			}
		}
	}
	return out
}

// wantView checks that r's view equals the room's presence, its own entry
// aside (a member is not told of its own changes).
func wantView(t *testing.T, m *Manager, room string, r *recorder) {
	t.Helper()
	got := view(t, r)
	ms, _ := m.Presence(room)
	want := map[string]protocol.Member{}
	for _, p := range ms {
		want[p.C] = p
	}
	if r.conn != "" {
		got[r.conn] = want[r.conn]
	}
	if !maps.EqualFunc(got, want, func(a, b protocol.Member) bool {
		return a.C == b.C && a.U == b.U && bytes.Equal(a.D, b.D) && bytes.Equal(a.I, b.I)
	}) {
		t.Fatalf("%s's view %v, the room's %v", r.conn, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

func TestPresenceWindowSeveralAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := windowed(t, 50*time.Millisecond, Namespace{})
		a := join(t, m, "r", "a", "ua")
		time.Sleep(time.Second)
		synctest.Wait()
		b := join(t, m, "r", "b", "ub")
		join(t, m, "r", "c", "uc")
		join(t, m, "r", "d", "ud")
		time.Sleep(49 * time.Millisecond)
		synctest.Wait()
		wantDeltas(t, a) // the window is still open
		time.Sleep(time.Millisecond)
		synctest.Wait()
		// One event, in the order they joined.
		wantDeltas(t, a, delta{join: []string{"b", "c", "d"}})
		// b joined first: it hears of c and d, not of itself.
		wantDeltas(t, b, delta{join: []string{"c", "d"}})
		for _, r := range []*recorder{a, b} {
			wantView(t, m, "r", r)
		}
		if ev := a.of(KindPres)[0]; frame(t, ev).T != protocol.TypePres {
			t.Fatal("not a pres frame")
		}
	})
}

func TestPresenceWindowJoinAndLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := windowed(t, 20*time.Millisecond, Namespace{})
		a := join(t, m, "r", "a", "ua")
		b := join(t, m, "r", "b", "ub")
		time.Sleep(time.Second)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}})

		// x joins and leaves within one window: nobody hears of it. b
		// updates twice and leaves.
		x := join(t, m, "r", "x", "ux")
		if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: "b", Data: mp(t, 1)}); err != nil {
			t.Fatal(err)
		}
		m.Leave("r", x)
		if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: "b", Data: mp(t, 2)}); err != nil {
			t.Fatal(err)
		}
		m.Leave("r", b)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}}, delta{leave: []string{"b"}})
		wantView(t, m, "r", a)

		// y joins, c joins (its snapshot shows y), y leaves, c updates: the
		// window's event takes y back, for c's sake.
		y := join(t, m, "r", "y", "uy")
		c := join(t, m, "r", "c", "uc")
		m.Leave("r", y)
		if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: "c", Data: mp(t, "c2")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}}, delta{leave: []string{"b"}}, delta{join: []string{"c"}, leave: []string{"y"}})
		if ev := a.of(KindPres)[2]; !bytes.Equal(ev.Join[0].D, mp(t, "c2")) {
			t.Fatalf("c's entry %+v, want its latest data", ev.Join[0])
		}
		wantView(t, m, "r", a)
		wantView(t, m, "r", c)

		// A change and its undoing within one window: one upd, the entry as
		// it now is.
		if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: "c", Data: mp(t, "c3")}); err != nil {
			t.Fatal(err)
		}
		if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: "c", Data: mp(t, "c2")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b"}}, delta{leave: []string{"b"}}, delta{join: []string{"c"}, leave: []string{"y"}}, delta{upd: []string{"c"}})
		wantView(t, m, "r", a)
	})
}

// A member that (re)joins in the middle of a window, with since or without,
// gets a snapshot that already holds the window's first changes; the
// window's event restates them, and its view is the room's.
func TestPresenceWindowResumeAcrossBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := windowed(t, 30*time.Millisecond, Namespace{})
		a := join(t, m, "r", "a", "ua")
		b := join(t, m, "r", "b", "ub")
		c := join(t, m, "r", "c", "uc")
		pub(t, m, "r", "a", "one")
		time.Sleep(time.Second)
		synctest.Wait()
		e, s := a.joined(t).Epoch, uint64(1)

		m.Drop("r", b) // b's connection drops; its entry is in grace
		join(t, m, "r", "d", "ud")
		m.Leave("r", c)
		time.Sleep(10 * time.Millisecond)
		b2 := join(t, m, "r", "b", "ub", withSince(e, s), withPresence(mp(t, "back")))
		if j := b2.joined(t); j.Reset || !eqStrs(conns(sorted(j.Presence)), []string{"a", "b", "d"}) {
			t.Fatalf("resume: reset %v, presence %v", j.Reset, conns(j.Presence))
		}
		join(t, m, "r", "f", "uf")
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		// One event for the window; b2 gets it too, minus its own change,
		// and it restates d's join and c's leave that its snapshot held.
		wantDeltas(t, b2, delta{join: []string{"d", "f"}, leave: []string{"c"}})
		wantDeltas(t, a, delta{join: []string{"b", "c"}}, delta{upd: []string{"b"}, join: []string{"d", "f"}, leave: []string{"c"}})
		for _, r := range []*recorder{a, b2} {
			wantView(t, m, "r", r)
		}
	})
}

func sorted(ms []protocol.Member) []protocol.Member {
	out := slices.Clone(ms)
	sortByConn(out)
	return out
}

func TestPresenceLargeRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := windowed(t, 20*time.Millisecond, Namespace{PresenceLarge: 3})
		a := join(t, m, "r", "a", "ua")
		join(t, m, "r", "b", "ub")
		join(t, m, "r", "c", "uc")
		time.Sleep(time.Second)
		synctest.Wait()
		wantDeltas(t, a, delta{join: []string{"b", "c"}})

		// Over the threshold: the count, not the changes.
		d := join(t, m, "r", "d", "ud")
		if j := d.joined(t); j.Count != 4 || len(j.Presence) != 4 {
			t.Fatalf("large joined: count %d, sample %d", j.Count, len(j.Presence))
		}
		e := join(t, m, "r", "e", "ue")
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		last := func(r *recorder) *Event { evs := r.of(KindPres); return evs[len(evs)-1] }
		if ev := last(a); ev.Count != 5 || ev.Join != nil || ev.Leave != nil || frame(t, ev).Cnt != 5 {
			t.Fatalf("large event %+v", ev)
		}
		if ev := last(d); ev.Count != 5 {
			t.Fatalf("d's event %+v", ev)
		}
		// A join and a leave in one window: the count is unchanged, nothing is sent.
		n := len(a.of(KindPres))
		x := join(t, m, "r", "x", "ux")
		m.Leave("r", e)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if len(a.of(KindPres)) != n {
			t.Fatal("an unchanged count was sent")
		}
		m.Leave("r", x)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if ev := last(a); ev.Count != 4 {
			t.Fatalf("count %d, want 4", ev.Count)
		}
		// Back to the threshold: the whole list, once, then deltas again.
		m.Leave("r", d)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if ev := last(a); ev.Count != 0 || !eqStrs(conns(ev.All), []string{"a", "b", "c"}) {
			t.Fatalf("leaving large mode: %+v", ev)
		}
		wantView(t, m, "r", a)
		join(t, m, "r", "g", "ug")
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if ev := last(a); ev.Count != 4 {
			t.Fatalf("count %d after g", ev.Count)
		}
	})
}

func TestPresenceSampleBounded(t *testing.T) {
	m := newManager(t, Config{Default: Namespace{PresenceLarge: 10}})
	for i := range PresenceSample + 20 {
		join(t, m, "r", string(rune('A'+i/26))+string(rune('a'+i%26)), "u")
	}
	j := join(t, m, "r", "zz", "u").joined(t)
	if j.Count != PresenceSample+21 || len(j.Presence) != PresenceSample {
		t.Fatalf("count %d, sample %d", j.Count, len(j.Presence))
	}
}

// Random joins, leaves, drops, rejoins and updates at random times: once the
// windows have ended, every member's view is the room's.
func TestPresenceWindowViewsConverge(t *testing.T) {
	for seed := range uint64(20) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			m := newManager(t, Config{PresenceWindow: 20 * time.Millisecond, PresenceWindowMax: 160 * time.Millisecond, PresenceGrace: 50 * time.Millisecond})
			live := map[string]*recorder{}
			for i := range 600 {
				if i%20 == 19 { // every so often, let the windows end and compare
					time.Sleep(time.Second)
					synctest.Wait()
					for _, r := range live {
						wantView(t, m, "r", r)
					}
				}
				c := string(rune('a' + rng.IntN(12)))
				r := live[c]
				switch op := rng.IntN(4); {
				case r == nil:
					live[c] = join(t, m, "r", c, "u"+c, withPresence(mp(t, rng.IntN(3))))
				case op == 0:
					m.Leave("r", r)
					delete(live, c)
				case op == 1:
					m.Drop("r", r)
					delete(live, c)
				default:
					if err := m.UpdatePresence(PresenceRequest{Room: "r", Conn: c, Data: mp(t, rng.IntN(3))}); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(time.Duration(rng.IntN(6)) * time.Millisecond)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			for _, r := range live {
				wantView(t, m, "r", r)
			}
		})
	}
}

// A busy room's windows double, up to the maximum; a quiet window brings
// them back to the short one.
func TestPresenceWindowGrows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{PresenceWindow: 20 * time.Millisecond, PresenceWindowMax: 100 * time.Millisecond})
		a := join(t, m, "r", "a", "ua")
		time.Sleep(time.Second)
		synctest.Wait()
		// A join every 5 ms for a second: windows of 20, 40, 80, 100, 100...
		var at []time.Duration
		t0 := time.Now()
		n := len(a.of(KindPres))
		for i := range 200 {
			join(t, m, "r", fmt.Sprintf("m%03d", i), "u")
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
			if k := len(a.of(KindPres)); k > n {
				at, n = append(at, time.Since(t0)), k
			}
		}
		want := []time.Duration{20, 60, 140, 240, 340, 440, 540, 640, 740, 840, 940}
		for i := range want {
			want[i] *= time.Millisecond
		}
		if !slices.Equal(at, want) {
			t.Fatalf("frames at %v, want %v", at, want)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		wantView(t, m, "r", a)
		// Quiet for a window: the next change goes out after the short one.
		t0, n = time.Now(), len(a.of(KindPres))
		join(t, m, "r", "late", "u")
		time.Sleep(19 * time.Millisecond)
		synctest.Wait()
		if len(a.of(KindPres)) != n {
			t.Fatal("sent before the window ended")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if len(a.of(KindPres)) != n+1 {
			t.Fatalf("not sent after %v", time.Since(t0))
		}
	})
}

// In large-room mode a storm's window is not cut short: its event is a
// count, one per window however many join.
func TestPresenceLargeRoomStormOneCountPerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{PresenceWindow: 50 * time.Millisecond, PresenceWindowMax: 50 * time.Millisecond, Default: Namespace{PresenceLarge: 10}})
		a := join(t, m, "r", "a", "ua")
		for i := range 400 {
			join(t, m, "r", fmt.Sprintf("m%03d", i), "u")
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		evs := a.of(KindPres)
		if len(evs) != 1 || evs[0].Count != 401 {
			t.Fatalf("%d events, the last %+v; want one count of 401", len(evs), evs[len(evs)-1])
		}
	})
}
