package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

// tokenExpiring signs a token of alice, allowed every operation in every room,
// whose exp is at (whole seconds, as exp is).
func tokenExpiring(t *testing.T, at time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": at.Unix(), "rooms": map[string][]string{"*": {"join", "pub", "pres", "state", "observe"}},
	}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newLeewayServer(t *testing.T, leeway time.Duration) *testServer {
	v, err := auth.NewVerifier(auth.Config{HMACSecrets: [][]byte{testSecret}, Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, func(c *Config, _ *room.Config) {
		c.Auth = v
		c.SSEPingInterval = 200 * time.Millisecond
	})
}

// A token within the leeway at hello is served until exp plus the leeway,
// as a token that expires during the connection is: not closed at once.
func TestLeewayAtHello(t *testing.T) {
	const leeway = 3 * time.Second
	ts := newLeewayServer(t, leeway)
	exp := time.Now().Add(-time.Second).Truncate(time.Second)
	c := ts.dial(t)
	if err := c.Hello(testCtx(t), tokenExpiring(t, exp), nil); err != nil {
		t.Fatalf("hello with a token %v past exp, leeway %v: %v", time.Since(exp).Round(time.Millisecond), leeway, err)
	}
	send(t, c, client.M{"t": "join", "id": 1, "r": "chat:x"})
	if f, err := c.Expect(testCtx(t), protocol.TypeJoined, protocol.TypePres); err != nil {
		t.Fatalf("join right after hello: %v, %+v", err, f)
	}
	expectBye(t, c, protocol.CodeTokenExpired)
	if end := exp.Add(leeway); time.Now().Before(end.Add(-100 * time.Millisecond)) {
		t.Fatalf("closed %v before exp plus leeway", time.Until(end))
	}
}

// An SSE stream ends with bye 4 at its token's exp plus the leeway.
func TestSSEEndsAtTokenExpiry(t *testing.T) {
	const leeway = time.Second
	ts := newLeewayServer(t, leeway)
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	hc := sseClient(t, nil)
	s := openSSE(t, hc, eventsURL(ts, "chat:exp", ""), http.Header{"Authorization": {"Bearer " + tokenExpiring(t, exp)}})
	s.expect("snapshot")
	s.expectBye(protocol.CodeTokenExpired)
	if end := exp.Add(leeway); time.Now().Before(end.Add(-100 * time.Millisecond)) {
		t.Fatalf("ended %v before exp plus leeway", time.Until(end))
	}
}
