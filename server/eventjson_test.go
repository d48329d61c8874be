package server

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/vmihailenco/msgpack/v5"
)

func mpRaw(t testing.TB, v any) protocol.Raw {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEventJSON(t *testing.T) {
	bad := protocol.Raw{0x81, 0x90, 0x01} // {[]: 1}: no JSON form
	tests := []struct {
		name string
		ev   *room.Event
		want string
	}{
		{"msg", &room.Event{Kind: room.KindMsg, Room: "chat:a", Seq: 7, User: "ann", Conn: "c1",
			Data: mpRaw(t, map[string]any{"text": "hi"}), TS: 1700000000000},
			`{"room":"chat:a","seq":7,"user":"ann","conn":"c1","data":{"text":"hi"},"ts":1700000000000}`},
		{"msg from the API", &room.Event{Kind: room.KindMsg, Room: "chat:a", Seq: 8, Data: mpRaw(t, []byte{1, 2}), TS: 1},
			`{"room":"chat:a","seq":8,"user":"","conn":"","data":"AQI=","ts":1}`},
		{"msg with a payload JSON cannot hold", &room.Event{Kind: room.KindMsg, Room: "a", Seq: 1, Data: bad},
			`{"room":"a","seq":1,"user":"","conn":"","data":null,"ts":0}`},
		{"state", &room.Event{Kind: room.KindState, Room: "b:1", Seq: 9, User: "ann", Conn: "c1", Key: "shape:\"1\"",
			Data: mpRaw(t, 1.5), TS: 2},
			`{"room":"b:1","seq":9,"key":"shape:\"1\"","data":1.5,"deleted":false,"ts":2}`},
		{"state deleted", &room.Event{Kind: room.KindState, Room: "b:1", Seq: 10, Key: "k", Deleted: true, TS: 3},
			`{"room":"b:1","seq":10,"key":"k","data":null,"deleted":true,"ts":3}`},
		{"eph", &room.Event{Kind: room.KindEph, Room: "b:1", User: "bob", Conn: "c2", Data: mpRaw(t, []int{10, 20})},
			`{"room":"b:1","user":"bob","conn":"c2","data":[10,20]}`},
		{"pres", &room.Event{Kind: room.KindPres, Room: "chat:a",
			Join:  []protocol.Member{{C: "c2", U: "bob", D: mpRaw(t, map[string]any{"name": "Bob"}), I: mpRaw(t, map[string]any{"role": "admin"})}, {C: "c3"}},
			Leave: []string{"c4", "c5"},
			Upd:   []protocol.Member{{C: "c1", U: "ann", D: mpRaw(t, "away")}}},
			`{"room":"chat:a","join":[{"conn":"c2","user":"bob","data":{"name":"Bob"},"info":{"role":"admin"}},{"conn":"c3","data":null}],` +
				`"leave":["c4","c5"],"update":[{"conn":"c1","user":"ann","data":"away"}]}`},
		{"pres empty", &room.Event{Kind: room.KindPres, Room: "r"}, `{"room":"r","join":[],"leave":[],"update":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := eventJSON(tt.ev)
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON %s", got)
			}
		})
	}
}

func TestEventJSONEncodedOnce(t *testing.T) {
	ev := &room.Event{Kind: room.KindMsg, Room: "a", Seq: 1, Data: mpRaw(t, "x")}
	first := eventJSON(ev)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := eventJSON(ev); &got[0] != &first[0] {
				t.Error("eventJSON encoded the event again")
			}
		})
	}
	wg.Wait()
}

func TestSnapshotJSON(t *testing.T) {
	log := []*room.Event{
		{Kind: room.KindMsg, Room: "chat:a", Seq: 4, User: "ann", Conn: "c1", Data: mpRaw(t, "hi"), TS: 10},
		{Kind: room.KindState, Room: "chat:a", Seq: 5, Key: "topic", Data: mpRaw(t, "news"), TS: 11},
	}
	got := snapshotJSON("chat:a", "ep1", 5,
		[]protocol.Member{{C: "c1", U: "ann"}}, 0,
		map[string]protocol.Raw{"topic": mpRaw(t, "news"), "n": mpRaw(t, uint64(1)<<60), "a": mpRaw(t, nil)},
		log)
	want := `{"room":"chat:a","epoch":"ep1","seq":5,"presence":[{"conn":"c1","user":"ann","data":null}],` +
		`"state":{"a":null,"n":"1152921504606846976","topic":"news"},` +
		`"log":[{"type":"message","room":"chat:a","seq":4,"user":"ann","conn":"c1","data":"hi","ts":10},` +
		`{"type":"state","room":"chat:a","seq":5,"key":"topic","data":"news","deleted":false,"ts":11}]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	empty := snapshotJSON("r", "e", 0, nil, 0, nil, nil)
	if want := `{"room":"r","epoch":"e","seq":0,"presence":[],"state":{},"log":[]}`; string(empty) != want {
		t.Fatalf("got  %s\nwant %s", empty, want)
	}
	// Large-room mode: a sample, and the count.
	large := snapshotJSON("r", "e", 0, []protocol.Member{{C: "c1"}}, 250, nil, nil)
	if want := `{"room":"r","epoch":"e","seq":0,"presence":[{"conn":"c1","data":null}],"count":250,"state":{},"log":[]}`; string(large) != want {
		t.Fatalf("got  %s\nwant %s", large, want)
	}
}

func BenchmarkEventJSON(b *testing.B) {
	data := mpRaw(b, map[string]any{"text": "hello everyone, the meeting starts in five minutes", "n": 3})
	b.ReportAllocs()
	for b.Loop() {
		ev := &room.Event{Kind: room.KindMsg, Room: "chat:lobby", Seq: 123456, User: "user-42", Conn: "c-8f3a2b", Data: data, TS: 1700000000000}
		if len(eventJSON(ev)) == 0 {
			b.Fatal("empty")
		}
	}
}
