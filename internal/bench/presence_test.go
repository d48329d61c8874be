package bench

import (
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestJoinStorm(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t, nil)
	c := quick(url, "joinstorm")
	c.Rooms, c.Subs, c.Pubs, c.Rate, c.JoinOver = 2, 40, 1, 50, 300*time.Millisecond
	res := run(t, c)
	checkClean(t, res)
	ps := res.Presence
	if ps == nil || ps.Members != 80 || ps.Matching != 80 {
		t.Fatalf("presence check %+v, want 80 of 80 members matching", ps)
	}
	// 40 joins a room: fewer frames than one per join per member (780), as
	// the room coalesces them, but at least one per member.
	if ps.Frames < 80 || ps.Frames >= 2*780 || ps.Entries < 2*780 {
		t.Errorf("pres frames %d naming %d entries", ps.Frames, ps.Entries)
	}
	if res.Params.JoinOver != "300ms" || res.Params.Warmup != "0s" {
		t.Errorf("params %+v", res.Params)
	}
}

// frameOf encodes v and scans it as the bench does.
func frameOf(t *testing.T, v any) *frameView {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f := &frameView{}
	if _, err := nextFrame(b, 0, f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPresView(t *testing.T) {
	type m = map[string]any
	want := func(cs ...string) map[string]struct{} {
		out := map[string]struct{}{}
		for _, c := range cs {
			out[c] = struct{}{}
		}
		return out
	}
	v := newPresView()
	if err := v.onJoined(frameOf(t, m{"t": "joined", "id": 1, "pres": []m{{"c": "a", "u": "x", "d": m{"k": 1}}, {"c": "me"}}})); err != nil {
		t.Fatal(err)
	}
	if !v.matches("me", want("a", "me")) || v.matches("me", want("a", "b", "me")) {
		t.Fatal("snapshot view")
	}
	if err := v.onPres(frameOf(t, m{"t": "pres", "r": "x", "join": []m{{"c": "b"}, {"c": "a"}}, "leave": []string{"a", "z"}})); err != nil {
		t.Fatal(err)
	}
	if !v.matches("me", want("b", "me")) {
		t.Fatalf("after a pres frame: %v", v.members)
	}
	// A missed leave shows.
	if v.matches("me", want("me")) {
		t.Fatal("a stale entry went unnoticed")
	}
	// Large-room mode: the count, then the whole list again.
	if err := v.onPres(frameOf(t, m{"t": "pres", "r": "x", "cnt": 3})); err != nil {
		t.Fatal(err)
	}
	if !v.matches("me", want("q", "r", "s")) || v.matches("me", want("me")) {
		t.Fatal("count")
	}
	if err := v.onPres(frameOf(t, m{"t": "pres", "r": "x", "all": []m{{"c": "me"}, {"c": "q"}}})); err != nil {
		t.Fatal(err)
	}
	if !v.matches("me", want("me", "q")) || v.frames != 3 {
		t.Fatalf("all: %v, %d frames", v.members, v.frames)
	}
}
