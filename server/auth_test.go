package server

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/auth"
)

var testSecret = []byte("test-secret-0123456789abcdef")

// syncBuffer is a log sink safe for concurrent writers (internal/testutil).
type syncBuffer = testutil.SyncBuffer

func newAuthServer(t *testing.T, logs *syncBuffer, edit func(*Config)) *testServer {
	v, err := auth.NewVerifier(auth.Config{HMACSecrets: [][]byte{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, func(c *Config, _ *room.Config) {
		c.Auth = v
		if logs != nil {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		if edit != nil {
			edit(c)
		}
	})
}

func mint(t *testing.T, secret []byte, sub string, ttl time.Duration, grants ...string) string {
	t.Helper()
	var gs []auth.Grant
	for _, g := range grants {
		pg, err := auth.ParseGrant(g)
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, pg)
	}
	tok, err := auth.Mint(secret, sub, gs, map[string]any{"name": sub}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// expiredToken is a well-signed token whose exp passed a minute ago.
func expiredToken(t *testing.T) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix(), "rooms": map[string][]string{"*": {"join"}},
	}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokensAtHello(t *testing.T) {
	logs := &syncBuffer{}
	ts := newAuthServer(t, logs, nil)
	good := mint(t, testSecret, "alice", time.Hour, "chat:*=join,pub")
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"mallory","rooms":{"*":["join","pub"]}}`)) + "."
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + b64([]byte(`{"sub":"alice","rooms":{"*":["join","pub","pres","state","observe"]}}`)) + "." + parts[2]

	cases := []struct {
		name string
		tok  string
		bye  protocol.Code
	}{
		{"missing", "", protocol.CodeUnauthorized},
		{"malformed", "not-a-token", protocol.CodeUnauthorized},
		{"two segments", "abc.def", protocol.CodeUnauthorized},
		{"alg none", none, protocol.CodeUnauthorized},
		{"forged claims", forged, protocol.CodeUnauthorized},
		{"wrong key", mint(t, []byte("another-secret-entirely-0123456"), "alice", time.Hour, "*=join"), protocol.CodeUnauthorized},
		{"expired", expiredToken(t), protocol.CodeTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			send(t, c, client.M{"t": "hello", "v": 1, "tok": tc.tok})
			expectBye(t, c, tc.bye)
		})
	}
	t.Run("valid in hello", func(t *testing.T) {
		c := ts.dial(t)
		if err := c.Hello(testCtx(t), good, nil); err != nil {
			t.Fatal(err)
		}
		if c.Welcome.U != "alice" || c.Welcome.Exp == 0 {
			t.Fatalf("welcome = %+v", c.Welcome)
		}
		j := join(t, c, 1, "chat:a", nil)
		m, _ := client.Members(j.Pres)
		if len(m) != 1 || m[0].U != "alice" || value(t, m[0].I).(map[string]any)["name"] != "alice" {
			t.Fatalf("presence = %+v: token info not merged", m)
		}
	})
	t.Run("valid in Authorization header", func(t *testing.T) {
		c, _, err := client.Dial(testCtx(t), ts.URL, &client.DialOptions{Header: http.Header{"Authorization": {"Bearer " + good}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello(testCtx(t), "", nil); err != nil || c.Welcome.U != "alice" {
			t.Fatalf("welcome %+v, %v", c.Welcome, err)
		}
	})
	for _, secret := range []string{string(testSecret), good, parts[2]} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log contains a secret or token:\n%s", logs.String())
		}
	}
}

func TestPermissionMatrix(t *testing.T) {
	ts := newAuthServer(t, nil, nil)
	ops := map[string]func(r string) client.M{
		"join":  func(r string) client.M { return client.M{"t": "join", "id": 9, "r": r} },
		"pub":   func(r string) client.M { return client.M{"t": "pub", "id": 9, "r": r, "d": 1} },
		"pres":  func(r string) client.M { return client.M{"t": "pres", "id": 9, "r": r, "d": 1} },
		"state": func(r string) client.M { return client.M{"t": "set", "id": 9, "r": r, "k": "k", "d": 1} },
	}
	for perm, op := range ops {
		for _, granted := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s granted=%v", perm, granted), func(t *testing.T) {
				perms := "join"
				if perm != "join" && granted {
					perms += "," + perm
				}
				if perm == "join" && !granted {
					perms = "observe"
				}
				c := ts.dial(t)
				if err := c.Hello(testCtx(t), mint(t, testSecret, "u", time.Hour, "room:*="+perms, "other:*=join,pub,pres,state"), nil); err != nil {
					t.Fatal(err)
				}
				if perm != "join" {
					join(t, c, 1, "room:m", nil)
				}
				send(t, c, op("room:m"))
				ctx := testCtx(t)
				for {
					f, err := c.Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if f.ID != 9 {
						continue
					}
					if got := f.T != protocol.TypeErr; got != granted {
						t.Fatalf("%s with granted=%v answered %+v", perm, granted, f)
					}
					if !granted && f.Code != protocol.CodeForbidden {
						t.Fatalf("denied with code %d", f.Code)
					}
					return
				}
			})
		}
	}
}

func TestTokenExpiryMidConnectionAndRefresh(t *testing.T) {
	ts := newAuthServer(t, nil, nil)
	t.Run("expiry closes with token_expired", func(t *testing.T) {
		c := ts.dial(t)
		if err := c.Hello(testCtx(t), mint(t, testSecret, "bob", 1500*time.Millisecond, "*=join"), nil); err != nil {
			t.Fatal(err)
		}
		expectBye(t, c, protocol.CodeTokenExpired)
	})
	t.Run("refresh keeps the connection", func(t *testing.T) {
		c := ts.dial(t)
		if err := c.Hello(testCtx(t), mint(t, testSecret, "bob", 1500*time.Millisecond, "*=join"), nil); err != nil {
			t.Fatal(err)
		}
		send(t, c, client.M{"t": "auth", "id": 3, "tok": mint(t, testSecret, "mallory", time.Hour, "*=join")})
		if f := expect(t, c, protocol.TypeErr); f.ID != 3 || f.Code != protocol.CodeUnauthorized {
			t.Fatalf("refresh as another user: %+v", f)
		}
		send(t, c, client.M{"t": "auth", "id": 4, "tok": mint(t, testSecret, "bob", time.Hour, "*=join")})
		if f := expect(t, c, protocol.TypeOK); f.ID != 4 {
			t.Fatalf("refresh: %+v", f)
		}
		// Past the first token's expiry the connection still answers.
		time.Sleep(2 * time.Second)
		send(t, c, client.M{"t": "join", "id": 5, "r": "x:y"})
		expect(t, c, protocol.TypeJoined)
	})
}

func TestConnectionLimits(t *testing.T) {
	ts := newAuthServer(t, nil, func(c *Config) {
		c.MaxConns = 3
		c.MaxConnsPerUser = 2
	})
	hello := func(user string) *client.Conn {
		c := ts.dial(t)
		send(t, c, client.M{"t": "hello", "v": 1, "tok": mint(t, testSecret, user, time.Hour, "*=join")})
		return c
	}
	a1, a2 := hello("ann"), hello("ann")
	expect(t, a1, protocol.TypeWelcome)
	expect(t, a2, protocol.TypeWelcome)
	expectBye(t, hello("ann"), protocol.CodeTooManyConns)
	b1 := hello("ben")
	expect(t, b1, protocol.TypeWelcome)
	expectBye(t, hello("cat"), protocol.CodeTooManyConns)
	_ = a1.Close()
	checkFor(t, 5*time.Second, func() error {
		if n := ts.Connections(); n != 2 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	expect(t, hello("ann"), protocol.TypeWelcome)
}

func TestPendingLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *room.Config) { c.MaxPending = 2 })
	ts.dial(t)
	ts.dial(t)
	_, resp, err := client.Dial(testCtx(t), ts.URL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection without hello: %v %v", err, resp)
	}
}
