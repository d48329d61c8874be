package room

import (
	"bytes"
	"strings"
	"testing"

	"github.com/roomd/roomd/protocol"
)

func set(t *testing.T, m *Manager, room, conn, key string, val protocol.Raw) uint64 {
	t.Helper()
	seq, err := m.SetState(SetRequest{Room: room, Conn: conn, User: "u-" + conn, Key: key, Value: val})
	if err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
	return seq
}

func TestStateSetDelete(t *testing.T) {
	m := newManager(t, Config{})
	a := join(t, m, "board:1", "a", "ua")
	if s := set(t, m, "board:1", "a", "x", mp(t, 1)); s != 1 {
		t.Fatal(s)
	}
	set(t, m, "board:1", "a", "y", mp(t, "two"))
	set(t, m, "board:1", "a", "x", mp(t, 3))
	set(t, m, "board:1", "a", "y", nil)          // delete
	set(t, m, "board:1", "a", "x", protocol.Nil) // msgpack nil deletes too
	if s := set(t, m, "board:1", "a", "absent", nil); s != 6 {
		t.Fatalf("delete of an absent key got seq %d, want 6", s)
	}
	set(t, m, "board:1", "a", "z", mp(t, true))

	evs := a.of(KindState)
	if len(evs) != 7 {
		t.Fatalf("%d state events", len(evs))
	}
	for i, want := range []struct {
		key     string
		deleted bool
	}{{"x", false}, {"y", false}, {"x", false}, {"y", true}, {"x", true}, {"absent", true}, {"z", false}} {
		ev := evs[i]
		if ev.Key != want.key || ev.Deleted != want.deleted || (ev.Data == nil) != want.deleted || ev.Seq != uint64(i+1) || ev.User != "u-a" {
			t.Fatalf("event %d: %+v", i, ev)
		}
		f := frame(t, ev)
		if f.T != protocol.TypeState || f.K != want.key || f.S != ev.Seq || (f.D == nil) != want.deleted || f.U != "u-a" || f.TS != ev.TS {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
	st, seq, ok := m.State("board:1")
	if !ok || seq != 7 || len(st) != 1 || !bytes.Equal(st["z"], mp(t, true)) {
		t.Fatalf("State = %v %d %v", st, seq, ok)
	}
	j := join(t, m, "board:1", "b", "ub").joined(t)
	if !j.Reset || len(j.State) != 1 || !bytes.Equal(j.State["z"], mp(t, true)) {
		t.Fatalf("snapshot on join %+v", j)
	}
	if st, _, ok := m.State("nope"); ok || st != nil {
		t.Fatal("state of a missing room")
	}
}

func TestStateLimits(t *testing.T) {
	m := newManager(t, Config{Default: Namespace{StateMaxKeys: 3, StateMaxBytes: 100, StateMaxValueBytes: 60}})
	join(t, m, "r", "a", "")
	v := func(n int) protocol.Raw { return mp(t, strings.Repeat("v", n)) } // n+1 bytes for n < 32, n+2 to 255
	set(t, m, "r", "a", "k1", v(10))                                       // 2+11 = 13
	set(t, m, "r", "a", "k2", v(10))                                       // 26
	set(t, m, "r", "a", "k3", v(10))                                       // 39
	_, err := m.SetState(SetRequest{Room: "r", Conn: "a", Key: "k4", Value: v(1)})
	wantCode(t, err, protocol.CodeLimit)
	set(t, m, "r", "a", "k3", v(20)) // replacing a key needs no new slot: 26 + 2+21 = 49
	set(t, m, "r", "a", "k4", nil)   // deleting an absent key is fine at the limit
	set(t, m, "r", "a", "k2", nil)   // 36
	set(t, m, "r", "a", "k2", v(50)) // 36 + 2+52 = 90
	_, err = m.SetState(SetRequest{Room: "r", Conn: "a", Key: "k1", Value: v(25)})
	wantCode(t, err, protocol.CodeTooLarge) // 90 - 11 + 26 = 105
	set(t, m, "r", "a", "k1", v(20))        // 90 - 11 + 21 = 100: exactly at the limit
	_, err = m.SetState(SetRequest{Room: "r", Conn: "a", Key: "k4", Value: v(1)})
	wantCode(t, err, protocol.CodeLimit)
	_, err = m.SetState(SetRequest{Room: "r", Conn: "a", Key: "k1", Value: v(60)})
	wantCode(t, err, protocol.CodeTooLarge) // one value over StateMaxValueBytes
	r, _ := m.lookup("r", noCreate)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.bytes != 100 || len(r.state.kv) != 3 {
		t.Fatalf("state accounting: %d bytes, %d keys", r.state.bytes, len(r.state.kv))
	}
	// The refused sets took no seq.
	if r.seq != 8 {
		t.Fatalf("seq %d", r.seq)
	}
}
