package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// roomsHeld waits until the node holds n rooms and stateBytes of state.
func roomsHeld(t *testing.T, ts *testServer, n int, stateBytes int64) {
	t.Helper()
	checkFor(t, 5*time.Second, func() error {
		if st := ts.rooms.Stats(); st.Rooms != n || st.StateBytes != stateBytes {
			return fmt.Errorf("node holds %d rooms and %d state bytes, want %d and %d", st.Rooms, st.StateBytes, n, stateBytes)
		}
		return nil
	})
}

func TestNodeBudgets(t *testing.T) {
	t.Run("rooms", func(t *testing.T) {
		ts := newTestServer(t, func(_ *Config, rc *room.Config) {
			rc.MaxRooms = 10
			rc.CreateBurst = 1000
			rc.PresenceGrace = -1
		})
		hostile, other := ts.connect(t), ts.connect(t)
		for i := range 10 {
			join(t, hostile, uint64(i+1), fmt.Sprintf("spam:%d", i), nil)
		}
		for i := 10; i < 15; i++ {
			send(t, hostile, client.M{"t": "join", "id": i + 1, "r": fmt.Sprintf("spam:%d", i)})
			if f := expect(t, hostile, protocol.TypeErr); f.Code != protocol.CodeOverloaded {
				t.Fatalf("join %d over the node's rooms: %+v, want err 7", i, f)
			}
		}
		// A live room can still be joined; a new one cannot be made.
		join(t, other, 1, "spam:0", nil)
		send(t, other, client.M{"t": "join", "id": 2, "r": "chat:new"})
		if f := expect(t, other, protocol.TypeErr, protocol.TypePres); f.Code != protocol.CodeOverloaded {
			t.Fatalf("another client's new room: %+v, want err 7", f)
		}
		// Empty rooms with nothing durable go at once, not after the idle time.
		_ = hostile.Close()
		roomsHeld(t, ts, 1, 0)
		join(t, other, 3, "chat:new", nil)
	})
	t.Run("creation rate per user", func(t *testing.T) {
		ts := newTestServer(t, func(_ *Config, rc *room.Config) {
			rc.CreateRate, rc.CreateBurst = 0.01, 5
		})
		hostile, other := ts.connect(t), ts.connect(t)
		for i := range 5 {
			join(t, hostile, uint64(i+1), fmt.Sprintf("spam:%d", i), nil)
			send(t, hostile, client.M{"t": "leave", "id": 100 + i, "r": fmt.Sprintf("spam:%d", i)})
			expect(t, hostile, protocol.TypeOK)
		}
		roomsHeld(t, ts, 0, 0) // joined and left: gone at once
		send(t, hostile, client.M{"t": "join", "id": 6, "r": "spam:5"})
		if f := expect(t, hostile, protocol.TypeErr); f.Code != protocol.CodeRateLimited {
			t.Fatalf("sixth room in the burst: %+v, want err 5", f)
		}
		join(t, other, 1, "spam:5", nil) // another (anonymous) connection has its own rate
	})
	t.Run("state bytes", func(t *testing.T) {
		ts := newTestServer(t, func(_ *Config, rc *room.Config) {
			rc.MaxStateBytes = 4000
			rc.PresenceGrace = -1
			rc.Namespaces = map[string]room.Namespace{"tmp": {IdleTTL: 300 * time.Millisecond}}
		})
		hostile, other := ts.connect(t), ts.connect(t)
		join(t, hostile, 1, "tmp:a", nil)
		join(t, other, 1, "chat:b", nil)
		val := strings.Repeat("x", 900)
		for i := range 4 {
			send(t, hostile, client.M{"t": "set", "id": 10 + i, "r": "tmp:a", "k": fmt.Sprint("k", i), "d": val})
			expect(t, hostile, protocol.TypeOK, protocol.TypeState)
		}
		send(t, hostile, client.M{"t": "set", "id": 20, "r": "tmp:a", "k": "k4", "d": val})
		if f := expect(t, hostile, protocol.TypeErr, protocol.TypeState); f.Code != protocol.CodeOverloaded {
			t.Fatalf("set over the node's state: %+v, want err 7", f)
		}
		send(t, other, client.M{"t": "set", "id": 2, "r": "chat:b", "k": "k", "d": val})
		if f := expect(t, other, protocol.TypeErr, protocol.TypeState, protocol.TypePres); f.Code != protocol.CodeOverloaded {
			t.Fatalf("another room's set over the node's state: %+v, want err 7", f)
		}
		// Once the hostile room is gone (its idle time), the node's state
		// count is back, and others may write again.
		_ = hostile.Close()
		roomsHeld(t, ts, 1, 0)
		send(t, other, client.M{"t": "set", "id": 3, "r": "chat:b", "k": "k", "d": val})
		if f := expect(t, other, protocol.TypeOK, protocol.TypeState, protocol.TypePres); f.ID != 3 {
			t.Fatalf("set after the hostile room went: %+v", f)
		}
	})
}
