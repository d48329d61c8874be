package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomd/roomd/internal/config"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/server/auth"
)

func verifyToken(t *testing.T, cfg auth.Config, tok string) *auth.Identity {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return id
}

func TestTokenWithSecret(t *testing.T) {
	const secret = "token-test-secret-0123456789abcdef"
	code, out, errOut := runCLI(t, "token", "--sub", "alice",
		"--room", "chat:*=join,pub,pres", "--room", "board:42=observe",
		"--ttl", "1h", "--info", `{"name":"Alice"}`, "--secret", secret)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
		t.Fatalf("output is not one token: %q", out)
	}
	id := verifyToken(t, auth.Config{HMACSecrets: [][]byte{[]byte(secret)}}, tok)
	if id.User != "alice" {
		t.Errorf("user %q", id.User)
	}
	want := []auth.Grant{
		{Pattern: "board:42", Perms: auth.PermObserve},
		{Pattern: "chat:*", Perms: auth.PermJoin | auth.PermPub | auth.PermPres},
	}
	if !reflect.DeepEqual(id.Grants, want) {
		t.Errorf("grants %v, want %v", id.Grants, want)
	}
	if id.Perms("chat:lobby")&auth.PermPub == 0 || id.Perms("board:42")&auth.PermJoin != 0 {
		t.Errorf("perms wrong: chat %v board %v", id.Perms("chat:lobby"), id.Perms("board:42"))
	}
	var info map[string]any
	if err := msgpack.Unmarshal(id.Info, &info); err != nil || info["name"] != "Alice" {
		t.Errorf("info %v (%v)", info, err)
	}
	if d := time.Until(id.Expires); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expires in %v, want about 1h", d)
	}

	// --ttl 0: never expires.
	_, out, _ = runCLI(t, "token", "--sub", "bob", "--ttl", "0", "--secret", secret)
	if id := verifyToken(t, auth.Config{HMACSecrets: [][]byte{[]byte(secret)}}, strings.TrimSpace(out)); !id.Expires.IsZero() {
		t.Errorf("--ttl 0 expires at %v", id.Expires)
	}
}

// Without --secret the token is signed with the configuration's first
// secret, and carries its issuer and audience, so the node accepts it.
func TestTokenFromConfig(t *testing.T) {
	file := testutil.WriteFile(t, "roomd.yaml", `
auth:
  jwt_secrets: [new-secret-0123456789abcdef0123, old-secret-0123456789abcdef0123]
  issuer: https://auth.example
  audience: roomd
`)
	t.Setenv("ROOMD_CONFIG", file)
	code, out, errOut := runCLI(t, "token", "--sub", "carol", "--room", "*=join")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cfg := mustLoad(t, config.Sources{File: file})
	id := verifyToken(t, cfg.AuthConfig(), strings.TrimSpace(out))
	if id.User != "carol" || len(id.Grants) != 1 || id.Grants[0].Pattern != "*" {
		t.Errorf("identity %+v", id)
	}
	// Signed with the first secret: a node that only knows it accepts it.
	only := auth.Config{HMACSecrets: [][]byte{[]byte("new-secret-0123456789abcdef0123")}, Issuer: "https://auth.example", Audience: "roomd"}
	verifyToken(t, only, strings.TrimSpace(out))

	// ROOMD_JWT_SECRET wins over the file, as for serve.
	t.Setenv("ROOMD_JWT_SECRET", "env-secret-0123456789abcdef01234")
	_, out, _ = runCLI(t, "token", "--sub", "dan")
	verifyToken(t, auth.Config{HMACSecrets: [][]byte{[]byte("env-secret-0123456789abcdef01234")}, Issuer: "https://auth.example", Audience: "roomd"}, strings.TrimSpace(out))
}

func TestTokenErrors(t *testing.T) {
	t.Setenv("ROOMD_CONFIG", "")
	t.Setenv("ROOMD_JWT_SECRET", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--secret", "s"}, 2, "--sub is required"},
		{[]string{"--sub", "a", "--secret", "s", "--room", "chat:*"}, 1, "want pattern=perm,perm"},
		{[]string{"--sub", "a", "--secret", "s", "--room", "chat:*=fly"}, 1, `unknown permission "fly"`},
		{[]string{"--sub", "a", "--secret", "s", "--info", "{nope"}, 1, "--info: not valid JSON"},
		{[]string{"--sub", "a", "--secret", "s", "--ttl", "-1h"}, 2, "--ttl must not be negative"},
		{[]string{"--sub", "a"}, 1, "no JWT secret"},
	} {
		code, out, errOut := runCLI(t, append([]string{"token"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}
