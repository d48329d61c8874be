package server

import (
	"slices"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// presOf decodes a pres frame's lists as connection ids.
func presOf(t *testing.T, f *protocol.Frame) (join, leave, upd []string) {
	t.Helper()
	js, err := client.Members(f.Join)
	if err != nil {
		t.Fatal(err)
	}
	us, err := client.Members(f.Upd)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Leave) > 0 {
		if err := msgpackUnmarshal(f.Leave, &leave); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range js {
		join = append(join, m.C)
	}
	for _, m := range us {
		upd = append(upd, m.C)
	}
	return join, leave, upd
}

// Presence changes within one window reach a member as one pres frame, in
// the order they happened, without a member that came and went, and
// without the receiver's own change; a member that resumes with since in the
// middle of a window gets the window's frame after its snapshot.
func TestPresenceBatchedOverSockets(t *testing.T) {
	// A window long enough for the connections below to join within it on a
	// busy machine under the race detector.
	const window = 1500 * time.Millisecond
	ts := newTestServer(t, func(_ *Config, rc *room.Config) { rc.PresenceWindow = window })
	a := ts.connect(t)
	join(t, a, 1, "chat:b", nil)
	time.Sleep(window * 3 / 2) // a's own window ends (its timer may fire late); it hears nothing of itself

	var ids []string
	for range 3 {
		c := ts.connect(t)
		join(t, c, 1, "chat:b", nil)
		ids = append(ids, c.Welcome.C)
	}
	x := ts.connect(t)
	join(t, x, 1, "chat:b", nil)
	send(t, x, client.M{"t": "leave", "id": 2, "r": "chat:b"})
	expect(t, x, protocol.TypeOK, protocol.TypePres)

	f := expect(t, a, protocol.TypePres)
	if j, l, u := presOf(t, f); !slices.Equal(j, ids) || l != nil || u != nil {
		t.Fatalf("one frame for the window: join %v leave %v upd %v, want join %v", j, l, u, ids)
	}

	// b drops; within its grace it reconnects with its id and resumes with
	// since and new data, while e joins: one frame, b's upd and e's join.
	b := ts.dial(t)
	if err := b.Hello(testCtx(t), "", nil); err != nil {
		t.Fatal(err)
	}
	jb := join(t, b, 1, "chat:b", client.M{"p": 1})
	time.Sleep(window * 3 / 2)
	f = expect(t, a, protocol.TypePres)
	if j, _, _ := presOf(t, f); !slices.Equal(j, []string{b.Welcome.C}) {
		t.Fatalf("b's join: %v", j)
	}
	_ = b.Close()
	b2 := ts.dial(t)
	if err := b2.Hello(testCtx(t), "", client.M{"c": b.Welcome.C}); err != nil {
		t.Fatal(err)
	}
	if b2.Welcome.C != b.Welcome.C {
		t.Fatalf("id not taken over: %q, %q", b2.Welcome.C, b.Welcome.C)
	}
	e := ts.connect(t)
	join(t, e, 1, "chat:b", nil)
	j2 := join(t, b2, 1, "chat:b", client.M{"p": 2, "since": client.M{"e": jb.E, "s": jb.S}})
	if j2.Reset {
		t.Fatal("resume got reset")
	}
	snap, _ := client.Members(j2.Pres)
	if len(snap) != 6 {
		t.Fatalf("b2's snapshot has %d entries, want 6", len(snap))
	}
	f = expect(t, a, protocol.TypePres)
	if j, l, u := presOf(t, f); !slices.Equal(j, []string{e.Welcome.C}) || l != nil || !slices.Equal(u, []string{b.Welcome.C}) {
		t.Fatalf("a: join %v leave %v upd %v", j, l, u)
	}
	// b2 gets the same window without its own upd: e's join, which its
	// snapshot already showed, restated.
	f = expect(t, b2, protocol.TypePres)
	if j, l, u := presOf(t, f); !slices.Equal(j, []string{e.Welcome.C}) || l != nil || u != nil {
		t.Fatalf("b2: join %v leave %v upd %v", j, l, u)
	}
}
