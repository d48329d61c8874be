package room

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/roomd/roomd/protocol"
)

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative history":     {Default: Namespace{HistorySize: -1}},
		"negative ttl":         {Default: Namespace{HistoryTTL: -time.Second}},
		"negative members":     {Namespaces: map[string]Namespace{"a": {MaxMembers: -1}}},
		"NaN rate":             {Default: Namespace{PublishRate: math.NaN()}},
		"negative rate":        {Default: Namespace{PublishRate: -1}},
		"infinite room rate":   {Default: Namespace{RoomPublishRate: math.Inf(1)}},
		"negative room burst":  {Namespaces: map[string]Namespace{"a": {RoomPublishBurst: -1}}},
		"negative dedupe max":  {DedupeMaxKeys: -1},
		"namespace with colon": {Namespaces: map[string]Namespace{"a:b": {}}},
		"namespace bad chars":  {Namespaces: map[string]Namespace{"a b": {}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestSettingsDefaults(t *testing.T) {
	m := newManager(t, Config{
		Default:    Namespace{HistorySize: 7, PublishRate: 2.5, RoomPublishRate: 25},
		Namespaces: map[string]Namespace{"chat": {MaxMessageBytes: 100}, "": {NoPresence: true}},
	})
	d := m.Settings("other:x")
	if d.HistorySize != 7 || d.HistoryTTL != DefaultHistoryTTL || d.IdleTTL != DefaultHistoryTTL ||
		d.MaxMessageBytes != 64<<10 || d.MaxPresenceBytes != 1<<10 || d.StateMaxKeys != 10_000 ||
		d.StateMaxBytes != 4<<20 || d.StateMaxValueBytes != 64<<10 || d.PublishBurst != 5 || d.RoomPublishBurst != 3 {
		t.Fatalf("default settings %+v", d)
	}
	c := m.Settings("chat:lobby")
	if c.HistorySize != DefaultHistorySize || c.MaxMessageBytes != 100 || c.StateMaxValueBytes != 100 || c.PublishRate != 0 || c.RoomPublishRate != 0 || c.RoomPublishBurst != 0 {
		t.Fatalf("chat settings %+v (fields left zero take defaults, not Default's values)", c)
	}
	if !m.Settings("lobby").NoPresence || m.Settings("x:lobby").NoPresence {
		t.Fatal("rooms without a ':' use namespace \"\"")
	}
	if m.cfg.PresenceGrace != DefaultPresenceGrace || m.cfg.DedupeWindow != MinDedupeWindow || m.cfg.DedupeMaxKeys != DefaultDedupeMaxKeys {
		t.Fatalf("config %+v", m.cfg)
	}
}

func TestInfoRoomsStats(t *testing.T) {
	m := newManager(t, Config{})
	join(t, m, "chat:b", "c1", "u")
	b := join(t, m, "chat:b", "c2", "u")
	join(t, m, "chat:a", "c1", "u")
	join(t, m, "chat:a", "o", "", observer)
	join(t, m, "board:1", "o", "", observer)
	apiPub(t, m, "chat:a", 1)
	m.Drop("chat:b", b) // graced: still counted
	rs := m.Rooms("chat:")
	if len(rs) != 2 || rs[0].Room != "chat:a" || rs[1].Room != "chat:b" {
		t.Fatalf("Rooms %+v", rs)
	}
	if rs[0].Seq != 1 || rs[0].Members != 1 || rs[0].Observers != 1 || rs[0].Epoch == "" || rs[1].Members != 2 {
		t.Fatalf("Rooms %+v", rs)
	}
	if rs[0].Epoch == rs[1].Epoch {
		t.Fatal("two rooms share an epoch")
	}
	if all := m.Rooms(""); len(all) != 3 {
		t.Fatalf("Rooms(\"\") = %d", len(all))
	}
	if s := m.Stats(); s != (Stats{Rooms: 3, Members: 3, Observers: 2}) {
		t.Fatalf("Stats %+v", s)
	}
	if _, ok := m.Info("chat:c"); ok {
		t.Fatal("Info of a missing room")
	}
	if _, ok := m.Info("bad name"); ok {
		t.Fatal("Info of an invalid name")
	}
}

func TestIdleDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{Default: Namespace{IdleTTL: 10 * time.Second}, PresenceGrace: 5 * time.Second})
		a := join(t, m, "r", "a", "")
		e1 := a.joined(t).Epoch
		apiPub(t, m, "r", 1)
		m.Leave("r", a)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if _, ok := m.Info("r"); !ok {
			t.Fatal("dropped before IdleTTL")
		}
		// A join cancels the drop.
		b := join(t, m, "r", "b", "", withSince(e1, 1))
		if j := b.joined(t); j.Epoch != e1 || j.Reset {
			t.Fatalf("joined %+v", j)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if info, ok := m.Info("r"); !ok || info.Epoch != e1 {
			t.Fatal("dropped with a member in it")
		}
		// A graced entry counts as a member until its grace ends.
		m.Drop("r", b)
		time.Sleep(14 * time.Second) // grace ends at 5 s, the room idles 10 s more
		synctest.Wait()
		if _, ok := m.Info("r"); !ok {
			t.Fatal("dropped during grace + IdleTTL")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, ok := m.Info("r"); ok {
			t.Fatal("not dropped after IdleTTL")
		}
		if s := m.Stats(); s.Rooms != 0 {
			t.Fatalf("stats %+v", s)
		}
		c := join(t, m, "r", "c", "", withSince(e1, 1))
		if j := c.joined(t); j.Epoch == e1 || !j.Reset || j.Seq != 0 || len(j.State) != 0 {
			t.Fatalf("rejoin after drop: %+v", j)
		}
		// Observers keep a room alive too.
		m.Leave("r", c)
		o := join(t, m, "r", "", "", observer)
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, ok := m.Info("r"); !ok {
			t.Fatal("dropped with an observer in it")
		}
		m.Drop("r", o)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if _, ok := m.Info("r"); ok {
			t.Fatal("not dropped after the observer left")
		}
	})
}

func TestAPIRoomIdles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, Config{Default: Namespace{IdleTTL: 10 * time.Second}})
		apiPub(t, m, "news", 1)
		time.Sleep(8 * time.Second)
		apiPub(t, m, "news", 2) // an API write keeps it for another IdleTTL
		time.Sleep(8 * time.Second)
		synctest.Wait()
		info, ok := m.Info("news")
		if !ok || info.Seq != 2 {
			t.Fatalf("info %+v %v", info, ok)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if _, ok := m.Info("news"); ok {
			t.Fatal("API room never idles out")
		}
	})
}

// TestIdleDropRace runs joins, publishes, leaves and API writes against a
// room that is dropped as soon as it is empty.
func TestIdleDropRace(t *testing.T) {
	// Rooms are made again and again: no creation rate here.
	m := newManager(t, Config{Default: Namespace{IdleTTL: time.Microsecond}, PresenceGrace: -1, CreateRate: 1e9})
	const workers, rounds = 8, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				room := fmt.Sprintf("race:%d", i%3)
				if w%4 == 3 {
					if _, err := m.Publish(PublishRequest{Room: room, Data: mp(t, i), FromAPI: true}); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				rec := &recorder{}
				conn := fmt.Sprintf("c%d", w)
				if err := m.Join(JoinRequest{Room: room, Conn: conn}, rec); err != nil {
					t.Error(err)
					return
				}
				seq, err := m.Publish(PublishRequest{Room: room, Conn: conn, Data: mp(t, i)})
				if err != nil {
					t.Errorf("publish as a member: %v", err)
					return
				}
				j := rec.joined(t)
				var found bool
				for _, ev := range rec.of(KindMsg) {
					found = found || (ev.Seq == seq && ev.Epoch == j.Epoch)
				}
				if !found {
					t.Errorf("member missed its own message %d", seq)
					return
				}
				if i%2 == 0 {
					m.Leave(room, rec)
				} else {
					m.Drop(room, rec)
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for m.Stats().Rooms != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("rooms left behind: %+v", m.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEpochs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		e := newEpoch()
		if len(e) != 12 || seen[e] || !protocol.ValidRoomName(e) {
			t.Fatalf("epoch %q", e)
		}
		seen[e] = true
	}
}

// The node's state count follows rooms wherever they go: sets, deletes,
// a handoff out and in, a drop.
func TestNodeStateBytes(t *testing.T) {
	m1 := newManager(t, Config{MaxStateBytes: 100})
	set := func(m *Manager, k string, v any) error {
		_, err := m.SetState(SetRequest{Room: "s", Key: k, Value: mp(t, v), FromAPI: true})
		return err
	}
	want := func(m *Manager, n int64) {
		t.Helper()
		if got := m.Stats().StateBytes; got != n {
			t.Fatalf("node state bytes %d, want %d", got, n)
		}
	}
	if err := set(m1, "a", strings.Repeat("x", 40)); err != nil { // 1 + 42
		t.Fatal(err)
	}
	want(m1, 43)
	if err := set(m1, "b", strings.Repeat("x", 60)); err == nil {
		t.Fatal("set past the node's state bytes accepted")
	} else {
		wantCode(t, err, protocol.CodeOverloaded)
	}
	if err := set(m1, "a", strings.Repeat("x", 90)); err != nil { // replaces: 1 + 92
		t.Fatal(err)
	}
	want(m1, 93)
	if _, err := m1.SetState(SetRequest{Room: "s", Key: "a", FromAPI: true}); err != nil {
		t.Fatal(err)
	}
	want(m1, 0)
	if err := set(m1, "c", "v"); err != nil {
		t.Fatal(err)
	}
	snap, _ := m1.Export("s")
	want(m1, 0)
	m2 := newManager(t, Config{})
	install(t, m2, snap)
	want(m2, 3)
	m2.Close()
	want(m2, 0)
}
