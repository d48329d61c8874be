package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// slowRouter delays the joins of rooms named "slow:..." as a room whose
// owner is unreachable does, until the op's context ends or delay passes.
type slowRouter struct {
	cluster.Router
	delay time.Duration
}

func (s *slowRouter) wrap(r cluster.Router) cluster.Router { s.Router = r; return s }

func (s *slowRouter) Join(ctx context.Context, req room.JoinRequest, sub room.Subscriber) error {
	if strings.HasPrefix(req.Room, "slow:") {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return protocol.NewError(protocol.CodeUnavailable, "gave up")
		}
	}
	return s.Router.Join(ctx, req, sub)
}

func TestSlowRoomOpStallsNeitherOtherRoomsNorLiveness(t *testing.T) {
	const delay = 3 * time.Second
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.Router = &slowRouter{delay: delay}
		c.PingInterval, c.PongTimeout = 300*time.Millisecond, 300*time.Millisecond
		c.MaxOpsInFlight = 8
	})
	c := ts.connect(t)
	start := time.Now()
	send(t, c,
		client.M{"t": "join", "id": 1, "r": "slow:a"},
		client.M{"t": "pub", "id": 2, "r": "slow:a", "d": "after the join"},
		client.M{"t": "join", "id": 3, "r": "fast:b"},
		client.M{"t": "pub", "id": 4, "r": "fast:b", "d": "x"})
	// Another room's ops are answered while the slow join waits.
	if f := expect(t, c, protocol.TypeJoined); f.ID != 3 {
		t.Fatalf("first joined: %+v, want fast:b's (id 3)", f)
	}
	if f := expect(t, c, protocol.TypeOK, protocol.TypeMsg); f.ID != 4 {
		t.Fatalf("ok %+v, want id 4", f)
	}
	if d := time.Since(start); d > delay/2 {
		t.Fatalf("fast:b answered after %v: behind the slow room", d)
	}
	// Bound: ops of the stuck room beyond MaxOpsInFlight get err 7.
	for i := range 10 {
		send(t, c, client.M{"t": "pres", "id": 100 + i, "r": "slow:a", "d": i})
	}
	if f := expect(t, c, protocol.TypeErr); f.Code != protocol.CodeOverloaded {
		t.Fatalf("err %+v, want code 7", f)
	}
	// A leave is never refused: it goes behind the join still waiting, and
	// the room is left for good once both ran.
	send(t, c, client.M{"t": "leave", "id": 6, "r": "slow:a"})
	// The slow room's own ops keep their order, and the connection lives
	// through pings the whole time (no bye 3).
	var order []uint64
	for len(order) < 3 {
		f, err := c.Next(testCtx(t))
		if err != nil {
			t.Fatalf("after %v: %v (closed for no pong?)", time.Since(start), err)
		}
		switch {
		case f.T == protocol.TypeBye:
			t.Fatalf("bye %d %s after %v", f.Code, f.Msg, time.Since(start))
		case (f.T == protocol.TypeJoined || f.T == protocol.TypeOK) && f.ID < 100:
			order = append(order, f.ID)
		}
	}
	if order[0] != 1 || order[1] != 2 || order[2] != 6 {
		t.Fatalf("slow:a answers in order %v, want its join (1), its pub (2), its leave (6)", order)
	}
	noMembers(t, ts, "slow:a")
	send(t, c, client.M{"t": "pub", "id": 5, "r": "fast:b", "d": "after"})
	for {
		f := expect(t, c, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres, protocol.TypeErr)
		if f.ID == 5 {
			break
		}
	}
}

// TestReaderAnswersBeforeWaitingForASlot: a reader that must wait for one
// of its connection's op slots first writes what it already answered;
// the answer does not wait with it.
func TestReaderAnswersBeforeWaitingForASlot(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.Router = &slowRouter{delay: 3 * time.Second}
		c.MaxOpsInFlight = 1
	})
	c := ts.connect(t)
	send(t, c, client.M{"t": "join", "id": 1, "r": "slow:a"}) // holds the one slot
	// One message: an answer at once (not joined), then an op that waits
	// for the slot (opsStall, then err 7).
	send(t, c,
		client.M{"t": "pub", "id": 2, "r": "other", "d": "x"},
		client.M{"t": "pres", "id": 3, "r": "slow:a", "d": "y"})
	ws := c.WS()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	frames, err := protocol.Split(nil, msg, 0)
	if err != nil {
		t.Fatal(err)
	}
	var f protocol.Frame
	if err := protocol.DecodeFrame(frames[0], &f); err != nil || f.T != protocol.TypeErr || f.ID != 2 || f.Code != protocol.CodeNotJoined {
		t.Fatalf("first answer %+v, %v; want err %d for id 2", f, err, protocol.CodeNotJoined)
	}
	if len(frames) != 1 {
		t.Fatalf("the answer for id 2 waited for the slot: it came with %d more", len(frames)-1)
	}
	if f := expect(t, c, protocol.TypeErr); f.ID != 3 || f.Code != protocol.CodeOverloaded {
		t.Fatalf("answer %+v, want err %d for id 3", f, protocol.CodeOverloaded)
	}
}
