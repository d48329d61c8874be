package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestMint(t *testing.T) {
	v := mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}})
	grants := []Grant{
		{"chat:*", PermJoin | PermPub},
		{"chat:*", PermPres},
		{"board:42", PermAll},
	}
	before := time.Now()
	tok, err := Mint(secret1, "alice", grants, map[string]any{"name": "Alice"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify(Mint): %v", err)
	}
	if id.User != "alice" {
		t.Fatalf("user %q", id.User)
	}
	if exp := id.Expires; exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour+time.Second)) {
		t.Fatalf("expires %v, want about an hour from %v", exp, before)
	}
	want := []Grant{{"board:42", PermAll}, {"chat:*", PermJoin | PermPub | PermPres}}
	if len(id.Grants) != 2 || id.Grants[0] != want[0] || id.Grants[1] != want[1] {
		t.Fatalf("grants %v, want %v", id.Grants, want)
	}
	var info map[string]string
	if err := msgpack.Unmarshal(id.Info, &info); err != nil || info["name"] != "Alice" {
		t.Fatalf("info %v, %v", info, err)
	}

	// No ttl: no expiry; no grants and no info: none.
	tok, err = Mint(secret1, "bob", nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err = v.Verify(tok)
	if err != nil || !id.Expires.IsZero() || id.Grants != nil || id.Info != nil {
		t.Fatalf("identity %+v, %v", id, err)
	}
	if id.Can("chat:lobby", PermJoin) {
		t.Fatal("token without grants can join")
	}

	// A sub-second ttl rounds up rather than expiring at once.
	tok, _ = Mint(secret1, "carol", nil, nil, time.Millisecond)
	if id, err = v.Verify(tok); err != nil || id.Expires.Before(before) {
		t.Fatalf("1ms ttl: %+v, %v", id, err)
	}

	// A token minted with another secret is refused.
	tok, _ = Mint(secret3, "mallory", grants, nil, time.Hour)
	if _, err := v.Verify(tok); !errors.Is(err, ErrSignature) {
		t.Fatalf("other secret: %v", err)
	}
}

func TestMintErrors(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		sub    string
		grants []Grant
		info   any
		ttl    time.Duration
	}{
		{name: "no secret", sub: "a"},
		{name: "no sub", secret: secret1},
		{name: "negative ttl", secret: secret1, sub: "a", ttl: -time.Second},
		{name: "bad pattern", secret: secret1, sub: "a", grants: []Grant{{"chat/*", PermJoin}}},
		{name: "empty pattern", secret: secret1, sub: "a", grants: []Grant{{"", PermJoin}}},
		{name: "no perms", secret: secret1, sub: "a", grants: []Grant{{"chat:*", 0}}},
		{name: "unknown perm bit", secret: secret1, sub: "a", grants: []Grant{{"chat:*", 0x80}}},
		{name: "info not json", secret: secret1, sub: "a", info: make(chan int)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Mint(tc.secret, tc.sub, tc.grants, tc.info, tc.ttl)
			if err == nil {
				t.Fatalf("Mint = %q, want an error", tok)
			}
			if strings.Contains(err.Error(), string(secret1)) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}
