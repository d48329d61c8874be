package server

import (
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
)

func TestJoinPresenceNeedsPres(t *testing.T) {
	ts := newAuthServer(t, nil, nil)
	hello := func(user, grant string) *client.Conn {
		c := ts.dial(t)
		if err := c.Hello(testCtx(t), mint(t, testSecret, user, time.Hour, grant), nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	watcher := hello("watcher", "chat:*=join,pres")
	join(t, watcher, 1, "chat:p", client.M{"p": client.M{"role": "viewer"}})

	joinOnly := hello("mallory", "chat:*=join")
	send(t, joinOnly, client.M{"t": "join", "id": 2, "r": "chat:p", "p": client.M{"role": "admin"}})
	if f := expect(t, joinOnly, protocol.TypeErr); f.ID != 2 || f.Code != protocol.CodeForbidden {
		t.Fatalf("join with p and no pres: %+v, want err 107", f)
	}
	// Without p the same token joins, and the others see it without data.
	join(t, joinOnly, 3, "chat:p", nil)
	if f := expect(t, watcher, protocol.TypePres); len(f.Join) == 0 {
		t.Fatalf("watcher got %+v, want a join delta", f)
	} else if ms, err := client.Members(f.Join); err != nil || len(ms) != 1 || !ms[0].D.IsNil() {
		t.Fatalf("join delta %+v (%v): want mallory without presence data", ms, err)
	}
}

func TestAuthRefreshThatNarrowsLeavesRooms(t *testing.T) {
	ts := newAuthServer(t, nil, nil)
	c := ts.dial(t)
	if err := c.Hello(testCtx(t), mint(t, testSecret, "bob", time.Hour, "chat:*=join,pub", "board:*=join,pub"), nil); err != nil {
		t.Fatal(err)
	}
	join(t, c, 1, "chat:a", nil)
	join(t, c, 2, "board:b", nil)
	send(t, c, client.M{"t": "auth", "id": 3, "tok": mint(t, testSecret, "bob", time.Hour, "chat:*=join,pub")})
	if f := expect(t, c, protocol.TypeOK); f.ID != 3 {
		t.Fatalf("refresh: %+v", f)
	}
	f := expect(t, c, protocol.TypeLeft, protocol.TypePres)
	if f.R != "board:b" || f.Code != protocol.CodeForbidden {
		t.Fatalf("left %+v, want board:b with code 107", f)
	}
	noMembers(t, ts, "board:b")
	// The room it may still join stays joined; the other one is left.
	send(t, c, client.M{"t": "pub", "id": 4, "r": "chat:a", "d": "still in"})
	if f := expect(t, c, protocol.TypeOK, protocol.TypeMsg, protocol.TypePres); f.ID != 4 {
		t.Fatalf("pub in chat:a: %+v", f)
	}
	send(t, c, client.M{"t": "leave", "id": 5, "r": "board:b"})
	if f := expect(t, c, protocol.TypeErr, protocol.TypeMsg, protocol.TypePres); f.ID != 5 || f.Code != protocol.CodeNotJoined {
		t.Fatalf("leave board:b after the refresh: %+v, want err 104", f)
	}
}
