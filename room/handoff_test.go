package room

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// roundTrip encodes and decodes a snapshot, as it travels between nodes, and
// checks that nothing changed on the way.
func roundTrip(t *testing.T, s *Snapshot) *Snapshot {
	t.Helper()
	b, err := s.MarshalMsgpack()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSnapshot(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip changed the snapshot:\n got %+v\nwant %+v", got, s)
	}
	b2, err := got.MarshalMsgpack()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
	return got
}

func install(t *testing.T, m *Manager, s *Snapshot) {
	t.Helper()
	if err := m.Install(s); err != nil {
		t.Fatalf("install: %v", err)
	}
}

func frames(evs []*Event) [][]byte {
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		out[i] = ev.Frame
	}
	return out
}

func wantMoved(t *testing.T, name string, r *recorder) {
	t.Helper()
	left := r.of(KindLeft)
	if len(left) != 1 || left[0].Code != protocol.CodeRoomMoved || left[0].Msg != "room moved" || left[0].Room == "" {
		t.Fatalf("%s: left events %+v, want one room_moved", name, left)
	}
}

// busyRoom makes a room with history, state, keys and presence (a, b live, c
// in grace, an observer) and returns its subscribers.
func busyRoom(t *testing.T, m *Manager, room string) (a, b, o *recorder) {
	t.Helper()
	a = join(t, m, room, "a", "ua", withPresence(mp(t, "here")), func(r *JoinRequest) { r.Info = mp(t, map[string]string{"name": "Ann"}) })
	b = join(t, m, room, "b", "ub")
	c := join(t, m, room, "c", "uc")
	o = join(t, m, room, "", "", observer)
	pub(t, m, room, "a", "one")
	keyed(t, m, room, "b", "k1", "keyed")
	if _, err := m.SetState(SetRequest{Room: room, Conn: "a", User: "ua", Key: "x", Value: mp(t, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: room, Key: "y", Value: mp(t, []int{1, 2}), FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: room, Conn: "b", User: "ub", Key: "gone", Value: mp(t, "soon")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: room, Conn: "b", User: "ub", Key: "gone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(PublishRequest{Room: room, Conn: "b", User: "ub", Data: mp(t, "eph"), Ephemeral: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(PublishRequest{Room: room, Data: mp(t, "api"), Key: "k2", FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	pub(t, m, room, "b", map[string]any{"last": true})
	m.Drop(room, c)
	return a, b, o
}

// leaves returns the conns r saw leave, sorted; it fails on any other delta.
func leaves(t *testing.T, r *recorder) []string {
	t.Helper()
	var out []string
	for _, d := range presDeltas(t, r) {
		if len(d.join) != 0 || len(d.upd) != 0 {
			t.Fatalf("delta %+v", d)
		}
		out = append(out, d.leave...)
	}
	sort.Strings(out)
	return out
}

func TestHandoffPreservesRoom(t *testing.T) {
	const room = "chat:1"
	m1 := newManager(t, Config{})
	a, b, o := busyRoom(t, m1, room)
	info1, _ := m1.Info(room)
	epoch, hist, _ := m1.History(room, 0, 0)
	state1, _, _ := m1.State(room)
	pres1, _ := m1.Presence(room)
	presBefore := len(a.of(KindPres))

	snap, ok := m1.Export(room)
	if !ok {
		t.Fatal("export of a live room")
	}
	for name, r := range map[string]*recorder{"a": a, "b": b, "o": o} {
		wantMoved(t, name, r)
	}
	if len(a.of(KindPres)) != presBefore || len(b.of(KindPres)) != 1 {
		t.Fatal("export broadcast presence")
	}
	if _, ok := m1.Info(room); ok || len(m1.RoomNames()) != 0 || m1.Stats() != (Stats{}) {
		t.Fatal("the room is still on the old manager")
	}
	if _, err := m1.Publish(PublishRequest{Room: room, Conn: "a", Data: mp(t, 1)}); err == nil {
		t.Fatal("a member publish after export succeeded")
	}
	if snap.Epoch != epoch || snap.Seq != info1.Seq || snap.Seq != 8 || len(snap.Log) != 8 || !reflect.DeepEqual(snap.Log, frames(hist)) {
		t.Fatalf("snapshot %+v", snap)
	}
	if !reflect.DeepEqual(snap.Presence, pres1) || !reflect.DeepEqual(snap.State, state1) || len(snap.Dedupe) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}

	got := roundTrip(t, snap)
	m2 := newManager(t, Config{})
	install(t, m2, got)

	if info, ok := m2.Info(room); !ok || info.Epoch != epoch || info.Seq != 8 || info.Members != 3 || info.Observers != 0 {
		t.Fatalf("installed %+v", info)
	}
	if names := m2.RoomNames(); !eqStrs(names, []string{room}) {
		t.Fatalf("names %v", names)
	}
	if st, seq, _ := m2.State(room); seq != 8 || !reflect.DeepEqual(st, state1) {
		t.Fatalf("state %v at %d", st, seq)
	}
	if ps, _ := m2.Presence(room); !reflect.DeepEqual(ps, pres1) {
		t.Fatalf("presence %+v, want %+v", ps, pres1)
	}
	e2, hist2, _ := m2.History(room, 0, 0)
	if e2 != epoch || len(hist2) != len(hist) {
		t.Fatalf("history %d events of %s", len(hist2), e2)
	}
	for i, ev := range hist2 {
		old := hist[i]
		if ev.Kind != old.Kind || ev.Seq != old.Seq || ev.User != old.User || ev.Conn != old.Conn || ev.TS != old.TS ||
			ev.Key != old.Key || ev.Deleted != old.Deleted || !bytes.Equal(ev.Data, old.Data) || ev.Room != room || ev.Epoch != epoch {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, ev, old)
		}
		if &ev.Frame[0] != &got.Log[i][0] {
			t.Fatalf("event %d: frame re-encoded or copied", i)
		}
		if len(ev.Data) > 0 && !inside(ev.Frame, ev.Data) {
			t.Fatalf("event %d: Data is a second copy", i)
		}
	}
	st2, _, _ := m2.State(room)
	for k, v := range st2 {
		found := false
		for _, ev := range hist2 {
			found = found || inside(ev.Frame, v)
		}
		if !found {
			t.Fatalf("state value of %q is a second copy", k)
		}
	}

	// Resume: every since in the log replays exactly what follows it.
	for s := uint64(0); s <= 8; s++ {
		r := join(t, m2, room, "", "", observer, withSince(epoch, s))
		j := r.joined(t)
		if j.Reset || j.Epoch != epoch || j.Seq != 8 || !reflect.DeepEqual(frames(j.Log), frames(hist[s:])) {
			t.Fatalf("resume from %d: reset %v, %d events", s, j.Reset, len(j.Log))
		}
		m2.Leave(room, r)
	}

	// Dedupe: a resend of a key from before the export gets its seq and
	// delivers nothing; a new publish continues the seq.
	w := join(t, m2, room, "", "", observer)
	seq, err := m2.Publish(PublishRequest{Room: room, Data: mp(t, "again"), Key: "k1", FromAPI: true})
	if err != nil || seq != 2 {
		t.Fatalf("resend = %d, %v", seq, err)
	}
	if seq := apiPub(t, m2, room, "next"); seq != 9 {
		t.Fatalf("next seq %d", seq)
	}
	if got := w.durable(); !eqSeqs(got, []uint64{9}) {
		t.Fatalf("delivered %v", got)
	}
}

func TestHandoffPresence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const room = "r"
		m1 := newManager(t, Config{PresenceGrace: 5 * time.Second})
		join(t, m1, room, "a", "ua", withPresence(mp(t, "hi")))
		join(t, m1, room, "b", "ub")
		join(t, m1, room, "c", "uc")
		d := join(t, m1, room, "d", "ud")
		m1.Drop(room, d)
		time.Sleep(3 * time.Second)
		snap, ok := m1.Export(room)
		if !ok || !eqStrs(conns(snap.Presence), []string{"a", "b", "c", "d"}) {
			t.Fatalf("snapshot presence %+v", snap)
		}
		time.Sleep(10 * time.Second) // the old room's timers are stopped: nothing may fire
		synctest.Wait()

		m2 := newManager(t, Config{PresenceGrace: 5 * time.Second, Default: Namespace{IdleTTL: 10 * time.Second}})
		install(t, m2, roundTrip(t, snap))
		if ms, _ := m2.Presence(room); !eqStrs(conns(ms), []string{"a", "b", "c", "d"}) {
			t.Fatalf("installed presence %v", conns(ms))
		}
		// a and b re-join with the same conn and user: taken over silently.
		a := join(t, m2, room, "a", "ua", withPresence(mp(t, "hi")))
		if got := conns(a.joined(t).Presence); !eqStrs(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("a's snapshot %v", got)
		}
		time.Sleep(2 * time.Second)
		b := join(t, m2, room, "b", "ub")
		wantDeltas(t, a)
		if info, _ := m2.Info(room); info.Members != 4 {
			t.Fatalf("members %d", info.Members)
		}
		// c and d are not taken over: they leave when their grace ends.
		time.Sleep(2 * time.Second)
		synctest.Wait()
		wantDeltas(t, a)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for _, r := range []*recorder{a, b} {
			if got := leaves(t, r); !eqStrs(got, []string{"c", "d"}) {
				t.Fatalf("leaves %v", got)
			}
		}
		if ms, _ := m2.Presence(room); !eqStrs(conns(ms), []string{"a", "b"}) {
			t.Fatalf("presence %v", conns(ms))
		}
		// The taken-over entries are ordinary members.
		pub(t, m2, room, "b", "hello")
		if len(a.of(KindMsg)) != 1 {
			t.Fatal("a missed b's message")
		}
		m2.Leave(room, a)
		if got := leaves(t, b); !eqStrs(got, []string{"a", "c", "d"}) || len(presDeltas(t, b)) != 3 {
			t.Fatalf("leaves %v", got)
		}

		// With no presence grace configured, installed entries still get
		// MinHandoffGrace; then the empty room idles out.
		snap2, _ := m2.Export(room)
		m3 := newManager(t, Config{PresenceGrace: -1, Default: Namespace{IdleTTL: 10 * time.Second}})
		install(t, m3, snap2)
		time.Sleep(MinHandoffGrace - time.Second)
		synctest.Wait()
		if ms, _ := m3.Presence(room); !eqStrs(conns(ms), []string{"b"}) {
			t.Fatalf("presence %v", conns(ms))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if info, ok := m3.Info(room); !ok || info.Members != 0 {
			t.Fatalf("after the grace: %+v %v", info, ok)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, ok := m3.Info(room); ok {
			t.Fatal("installed room never idled out")
		}
	})
}

func TestHandoffEmptyRoomIdles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m1 := newManager(t, Config{})
		apiPub(t, m1, "api", 1)
		snap, _ := m1.Export("api")
		m2 := newManager(t, Config{Default: Namespace{IdleTTL: 10 * time.Second}})
		install(t, m2, roundTrip(t, snap))
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if _, ok := m2.Info("api"); !ok {
			t.Fatal("dropped early")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, ok := m2.Info("api"); ok {
			t.Fatal("not dropped")
		}
	})
}

func TestExportMissingAndInstallErrors(t *testing.T) {
	m := newManager(t, Config{})
	if s, ok := m.Export("nope"); ok || s != nil {
		t.Fatal("export of a missing room")
	}
	if _, ok := m.Export("bad name"); ok {
		t.Fatal("export of an invalid name")
	}
	apiPub(t, m, "r", 1)
	snap, _ := m.Export("r")
	if _, ok := m.Export("r"); ok {
		t.Fatal("exported twice")
	}
	install(t, m, snap) // back where it came from: fine, it is gone here
	if err := m.Install(snap); !errors.Is(err, ErrRoomExists) {
		t.Fatalf("install over an installed room: %v", err)
	}
	join(t, m, "other", "c", "")
	other := *snap
	other.Room, other.Log, other.Conns = "other", nil, nil
	if err := m.Install(&other); !errors.Is(err, ErrRoomExists) {
		t.Fatalf("install over a live room: %v", err)
	}
	if err := m.Install(nil); !errors.Is(err, ErrBadSnapshot) {
		t.Fatal(err)
	}
	bad := *snap
	bad.Epoch = ""
	if err := m.Install(&bad); !errors.Is(err, ErrBadSnapshot) {
		t.Fatal(err)
	}
	m.Close()
	if err := m.Install(&other); err != ErrClosed {
		t.Fatalf("install on a closed manager: %v", err)
	}
	if _, ok := m.Export("other"); ok || len(m.RoomNames()) != 0 {
		t.Fatal("closed manager exports")
	}
}

func TestInstallStateLimits(t *testing.T) {
	m1 := newManager(t, Config{})
	for _, k := range []string{"a", "b", "c"} {
		if _, err := m1.SetState(SetRequest{Room: "s", Key: k, Value: mp(t, k+k), FromAPI: true}); err != nil {
			t.Fatal(err)
		}
	}
	var bytes1 int
	r1, _ := m1.lockRoom("s", noCreate)
	bytes1 = r1.state.bytes
	r1.mu.Unlock()
	snap, _ := m1.Export("s")

	small := newManager(t, Config{Default: Namespace{StateMaxKeys: 2}})
	if err := small.Install(snap); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("install over the key limit: %v", err)
	}
	if err := newManager(t, Config{Default: Namespace{StateMaxBytes: bytes1 - 1}}).Install(snap); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("install over the byte limit: %v", err)
	}
	if _, ok := small.Info("s"); ok {
		t.Fatal("a failed install left a room")
	}

	m2 := newManager(t, Config{Default: Namespace{StateMaxKeys: 3, StateMaxBytes: bytes1}})
	install(t, m2, snap)
	r2, _ := m2.lockRoom("s", noCreate)
	if r2.state.bytes != bytes1 {
		t.Fatalf("state bytes %d, want %d", r2.state.bytes, bytes1)
	}
	r2.mu.Unlock()
	_, err := m2.SetState(SetRequest{Room: "s", Key: "d", Value: mp(t, 1), FromAPI: true})
	wantCode(t, err, protocol.CodeLimit)
	_, err = m2.SetState(SetRequest{Room: "s", Key: "a", Value: mp(t, "aaa"), FromAPI: true})
	wantCode(t, err, protocol.CodeTooLarge)
	if seq, err := m2.SetState(SetRequest{Room: "s", Key: "a", Value: mp(t, "a"), FromAPI: true}); err != nil || seq != 4 {
		t.Fatalf("set = %d, %v", seq, err)
	}
}

func TestInstallPresenceLimit(t *testing.T) {
	m1 := newManager(t, Config{})
	join(t, m1, "p", "a", "ua", withPresence(mp(t, "far too long")))
	snap, _ := m1.Export("p")
	if err := newManager(t, Config{Default: Namespace{MaxPresenceBytes: 4}}).Install(snap); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("install over the presence limit: %v", err)
	}
	install(t, newManager(t, Config{}), snap)
}

func TestSnapshotMsgpackInterfaces(t *testing.T) {
	m := newManager(t, Config{})
	busyRoom(t, m, "r")
	snap, _ := m.Export("r")
	type envelope struct {
		Op   string    `msgpack:"op"`
		Snap *Snapshot `msgpack:"snap"`
	}
	b, err := msgpack.Marshal(envelope{Op: "install", Snap: snap})
	if err != nil {
		t.Fatal(err)
	}
	var got envelope
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Op != "install" || !reflect.DeepEqual(got.Snap, snap) {
		t.Fatalf("envelope %+v", got)
	}
}

// validSnapshot returns a real snapshot and its encoding.
func validSnapshot(t testing.TB) (*Snapshot, []byte) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec := &recorder{}
	if err := m.Join(JoinRequest{Room: "ns:room", Conn: "c1", User: "u1", Presence: mp(t, "p"), Info: mp(t, 1)}, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(PublishRequest{Room: "ns:room", Conn: "c1", User: "u1", Data: mp(t, "hi"), Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: "ns:room", Conn: "c1", User: "u1", Key: "x", Value: mp(t, map[string]int{"a": 1})}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: "ns:room", Key: "y", Value: mp(t, 2), FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetState(SetRequest{Room: "ns:room", Key: "y", FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Export("ns:room")
	b, err := s.MarshalMsgpack()
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func TestDecodeSnapshotRejects(t *testing.T) {
	s, b := validSnapshot(t)
	for _, in := range [][]byte{nil, {}, {0xc0}, {0xc1}, {0x90}, {0x80}, {0x01}, []byte("garbage"), {0xdf, 0xff, 0xff, 0xff, 0xff}, {0xdd, 0xff, 0xff, 0xff, 0xff}, append(bytes.Clone(b), 0)} {
		if _, err := DecodeSnapshot(in); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("DecodeSnapshot(%x) = %v", in, err)
		}
	}
	for n := range len(b) {
		if _, err := DecodeSnapshot(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	deep := append(bytes.Repeat([]byte{0x91}, 1<<20), 0)
	if _, err := DecodeSnapshot(deep); err == nil {
		t.Fatal("deep nesting accepted")
	}

	msgFrame := func(room string, seq uint64) []byte {
		return protocol.MustEncode(&protocol.Msg{T: protocol.TypeMsg, R: room, S: seq, D: protocol.Nil})
	}
	for name, mutate := range map[string]func(s *Snapshot){
		"version":       func(s *Snapshot) { s.V = 2 },
		"room":          func(s *Snapshot) { s.Room = "bad name" },
		"no epoch":      func(s *Snapshot) { s.Epoch = "" },
		"long epoch":    func(s *Snapshot) { s.Epoch = string(bytes.Repeat([]byte{'e'}, 65)) },
		"seq below log": func(s *Snapshot) { s.Seq = 3 },
		"seq above log": func(s *Snapshot) { s.Seq = 5 },
		"seq zero":      func(s *Snapshot) { s.Seq = 0 },
		"gap":           func(s *Snapshot) { s.Log = append(s.Log[:1:1], s.Log[2:]...); s.Conns = s.Conns[1:] },
		"order":         func(s *Snapshot) { s.Log[0], s.Log[1] = s.Log[1], s.Log[0] },
		"frame garbage": func(s *Snapshot) { s.Log[0] = []byte{0x81, 0xa1} },
		"frame empty":   func(s *Snapshot) { s.Log[0] = []byte{} },
		"frame type":    func(s *Snapshot) { s.Log[0] = protocol.MustEncode(&protocol.Eph{T: protocol.TypeEph, R: s.Room}) },
		"frame room":    func(s *Snapshot) { s.Log[0] = msgFrame("other", 1) },
		"frame payload": func(s *Snapshot) {
			s.Log[0] = protocol.MustEncode(&protocol.Msg{T: protocol.TypeMsg, R: s.Room, S: 1, D: protocol.Raw{0xd4, 0, 0}})
		},
		"conns length":     func(s *Snapshot) { s.Conns = s.Conns[1:] },
		"conns disagree":   func(s *Snapshot) { s.Conns[0] = "someone" },
		"state value":      func(s *Snapshot) { s.State["x"] = mp(t, 3) },
		"state missing":    func(s *Snapshot) { delete(s.State, "x") },
		"state deleted":    func(s *Snapshot) { s.State["y"] = mp(t, 2) },
		"state nil":        func(s *Snapshot) { s.State["z"] = protocol.Nil },
		"state empty key":  func(s *Snapshot) { s.State[""] = mp(t, 1) },
		"state bad value":  func(s *Snapshot) { s.State["z"] = protocol.Raw{0x92, 1} },
		"pres empty conn":  func(s *Snapshot) { s.Presence = append(s.Presence, protocol.Member{}) },
		"pres repeated":    func(s *Snapshot) { s.Presence = append(s.Presence, s.Presence[0]) },
		"pres bad data":    func(s *Snapshot) { s.Presence[0].D = protocol.Raw{0x91} },
		"dedupe seq":       func(s *Snapshot) { s.Dedupe[0].Seq = 9 },
		"dedupe seq zero":  func(s *Snapshot) { s.Dedupe[0].Seq = 0 },
		"dedupe empty key": func(s *Snapshot) { s.Dedupe[0].Key = "" },
		"dedupe repeated":  func(s *Snapshot) { s.Dedupe = append(s.Dedupe, s.Dedupe[0]) },
		"dedupe long key":  func(s *Snapshot) { s.Dedupe[0].Key = string(bytes.Repeat([]byte{'k'}, 65)) },
	} {
		c, err := DecodeSnapshot(b) // a private copy to mutate
		if err != nil {
			t.Fatal(err)
		}
		mutate(c)
		enc, err := c.MarshalMsgpack()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := DecodeSnapshot(enc); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: decode = %v, want ErrBadSnapshot", name, err)
		}
		if err := newManager(t, Config{}).Install(c); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: install = %v, want ErrBadSnapshot", name, err)
		}
	}
	if _, err := DecodeSnapshot(b); err != nil || len(s.Log) != 4 {
		t.Fatalf("the valid snapshot: %v, %d events", err, len(s.Log))
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	_, b := validSnapshot(f)
	f.Add(b)
	empty, _ := (&Snapshot{V: SnapshotVersion, Room: "r", Epoch: "e"}).MarshalMsgpack()
	f.Add(empty)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		b2, err := s.MarshalMsgpack()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := DecodeSnapshot(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip:\n%+v\n%+v", s, s2)
		}
		m, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Install(s); err != nil && !errors.Is(err, ErrBadSnapshot) {
			t.Fatal(err)
		}
	})
}

// TestExportUnderLoad exports a room while members and the API publish into
// it: every acknowledged publish is either in the snapshot under its seq or,
// for API publishes after the export, in the new room that replaced it here;
// member publishes after the export fail.
func TestExportUnderLoad(t *testing.T) {
	const room = "load"
	m := newManager(t, Config{Default: Namespace{HistorySize: 1 << 16}})
	const workers = 8
	type ack struct {
		seq uint64
		err error
		api bool
	}
	var (
		mu       sync.Mutex
		acks     = map[int]ack{}
		exported atomic.Bool
		wg       sync.WaitGroup
	)
	members := make([]*recorder, workers)
	for w := range workers {
		members[w] = join(t, m, room, fmt.Sprint("c", w), "")
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after := 0
			for i := 0; i < 100_000 && after < 50; i++ {
				if exported.Load() {
					after++
				}
				id := w*100_000 + i
				api := w%2 == 0
				var seq uint64
				var err error
				if api {
					seq, err = m.Publish(PublishRequest{Room: room, Data: mp(t, id), FromAPI: true})
				} else {
					seq, err = m.Publish(PublishRequest{Room: room, Conn: fmt.Sprint("c", w), Data: mp(t, id)})
				}
				mu.Lock()
				acks[id] = ack{seq, err, api}
				mu.Unlock()
			}
		}()
	}
	for {
		if info, _ := m.Info(room); info.Seq >= 300 {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	snap, ok := m.Export(room)
	exported.Store(true)
	wg.Wait()
	if !ok {
		t.Fatal("export failed")
	}
	for w, r := range members {
		wantMoved(t, fmt.Sprint("member ", w), r)
	}
	snap = roundTrip(t, snap)

	idsOf := func(evs []*Event) map[int]uint64 {
		out := map[int]uint64{}
		for i, ev := range evs {
			var id int
			if err := msgpack.Unmarshal(ev.Data, &id); err != nil {
				t.Fatal(err)
			}
			if ev.Seq != uint64(i)+1 {
				t.Fatalf("log seq %d at %d", ev.Seq, i)
			}
			out[id] = ev.Seq
		}
		return out
	}
	evs, err := snap.events()
	if err != nil {
		t.Fatal(err)
	}
	inSnap := idsOf(evs)
	if uint64(len(inSnap)) != snap.Seq {
		t.Fatalf("snapshot holds %d events at seq %d", len(inSnap), snap.Seq)
	}
	var inNew map[int]uint64
	if epoch, evs, ok := m.History(room, 0, 0); ok {
		if epoch == snap.Epoch {
			t.Fatal("the new room kept the epoch")
		}
		inNew = idsOf(evs)
	}
	var before, failed, moved int
	for id, a := range acks {
		s1, ok1 := inSnap[id]
		s2, ok2 := inNew[id]
		switch {
		case a.err != nil:
			if a.api || ok1 || ok2 {
				t.Fatalf("publish %d failed (%v) yet is logged (api %v)", id, a.err, a.api)
			}
			wantCode(t, a.err, protocol.CodeNotJoined)
			failed++
		case ok1 && !ok2 && s1 == a.seq:
			before++
		case ok2 && !ok1 && s2 == a.seq && a.api:
			moved++
		default:
			t.Fatalf("acknowledged publish %d (seq %d, api %v) lost: snapshot %v %d, new room %v %d", id, a.seq, a.api, ok1, s1, ok2, s2)
		}
	}
	if before != len(inSnap) || failed == 0 || moved == 0 {
		t.Fatalf("%d before (snapshot %d), %d failed, %d moved", before, len(inSnap), failed, moved)
	}
	m2 := newManager(t, Config{Default: Namespace{HistorySize: 1 << 16}})
	install(t, m2, snap)
	if seq := apiPub(t, m2, room, -1); seq != snap.Seq+1 {
		t.Fatalf("seq after install %d", seq)
	}
}
