package auth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/vmihailenco/msgpack/v5"
)

// verifiers builds one Verifier per key setup used by the tests.
type verifiers struct {
	hmac, rsa, ec, jwks, mixed, strict *Verifier
}

func newVerifiers(t *testing.T) verifiers {
	t.Helper()
	dir := t.TempDir()
	rsaPEM := writeFile(t, dir, "rsa.pem", pemPublic(t, &rsaKeyA().PublicKey))
	ecPEM := writeFile(t, dir, "ec.pem", pemPublic(t, &ecKeyA().PublicKey))
	jwks := writeFile(t, dir, "jwks.json", jwksJSON(
		jwkOf("ra", &rsaKeyA().PublicKey),
		jwkOf("rb", &rsaKeyB().PublicKey),
		jwkOf("ea", &ecKeyA().PublicKey),
	))
	return verifiers{
		hmac:  mustVerifier(t, Config{HMACSecrets: [][]byte{secret1, secret2}}),
		rsa:   mustVerifier(t, Config{PublicKeyFiles: []string{rsaPEM}}),
		ec:    mustVerifier(t, Config{PublicKeyFiles: []string{ecPEM}}),
		jwks:  mustVerifier(t, Config{JWKSFile: jwks}),
		mixed: mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}, PublicKeyFiles: []string{rsaPEM}}),
		strict: mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}, Issuer: "https://auth.example",
			Audience: "roomd", RequireExpiry: true}),
	}
}

type verifyCase struct {
	name   string
	v      *Verifier
	token  string
	want   error  // nil: must verify
	reason string // Reason(err)
	user   string // expected User when want is nil
}

// verifyCases returns every Verify case; also used by the leak test.
func verifyCases(t *testing.T, vs verifiers) []verifyCase {
	t.Helper()
	hs, rs, es := jwt.SigningMethodHS256, jwt.SigningMethodRS256, jwt.SigningMethodES256
	base := claimsFor("alice")
	now := time.Now()
	valid := sign(t, hs, secret1, base, nil)
	head, _, _ := strings.Cut(valid, ".")
	sig := valid[strings.LastIndexByte(valid, '.')+1:]
	bobSig := sign(t, hs, secret1, claimsFor("bob"), nil)
	bobSig = bobSig[strings.LastIndexByte(bobSig, '.')+1:]
	payload := b64json(base)
	noneHead := b64json(`{"alg":"none","typ":"JWT"}`)

	return []verifyCase{
		// Accepted.
		{name: "hs256 first secret", v: vs.hmac, token: valid, user: "alice"},
		{name: "hs256 second secret", v: vs.hmac, token: sign(t, hs, secret2, claimsFor("bob"), nil), user: "bob"},
		{name: "rs256 pem", v: vs.rsa, token: sign(t, rs, rsaKeyA(), base, nil), user: "alice"},
		{name: "es256 pem", v: vs.ec, token: sign(t, es, ecKeyA(), base, nil), user: "alice"},
		{name: "jwks kid ra", v: vs.jwks, token: sign(t, rs, rsaKeyA(), base, map[string]any{"kid": "ra"}), user: "alice"},
		{name: "jwks kid rb", v: vs.jwks, token: sign(t, rs, rsaKeyB(), base, map[string]any{"kid": "rb"}), user: "alice"},
		{name: "jwks kid ea", v: vs.jwks, token: sign(t, es, ecKeyA(), base, map[string]any{"kid": "ea"}), user: "alice"},
		{name: "jwks no kid", v: vs.jwks, token: sign(t, rs, rsaKeyB(), base, nil), user: "alice"},
		{name: "mixed hs256", v: vs.mixed, token: valid, user: "alice"},
		{name: "mixed rs256", v: vs.mixed, token: sign(t, rs, rsaKeyA(), base, nil), user: "alice"},
		{name: "expired within leeway", v: vs.hmac, token: sign(t, hs, secret1, with(base, "exp", now.Add(-2*time.Second).Unix()), nil), user: "alice"},
		{name: "no exp", v: vs.hmac, token: sign(t, hs, secret1, with(base, "exp", nil), nil), user: "alice"},
		{name: "no rooms", v: vs.hmac, token: sign(t, hs, secret1, with(base, "rooms", nil), nil), user: "alice"},
		{name: "strict ok", v: vs.strict, token: sign(t, hs, secret1, with(base, "iss", "https://auth.example", "aud", []string{"x", "roomd"}), nil), user: "alice"},

		// Missing and malformed.
		{name: "missing", v: vs.hmac, token: "", want: ErrMissing, reason: "missing"},
		{name: "garbage", v: vs.hmac, token: "garbage-not-a-token", want: ErrMalformed, reason: "malformed"},
		{name: "two segments", v: vs.hmac, token: head + "." + payload, want: ErrMalformed, reason: "malformed"},
		{name: "four segments", v: vs.hmac, token: valid + ".x", want: ErrMalformed, reason: "malformed"},
		{name: "header bad base64", v: vs.hmac, token: "!!!." + payload + "." + sig, want: ErrMalformed, reason: "malformed"},
		{name: "header bad json", v: vs.hmac, token: b64json(`{"alg":`) + "." + payload + "." + sig, want: ErrMalformed, reason: "malformed"},
		{name: "header no alg", v: vs.hmac, token: b64json(`{"typ":"JWT"}`) + "." + payload + "." + sig, want: ErrMalformed, reason: "malformed"},
		{name: "payload bad base64", v: vs.hmac, token: head + ".%%%." + sig, want: ErrMalformed, reason: "malformed"},
		{name: "payload bad json", v: vs.hmac, token: head + "." + b64json(`{"sub":"alice"`) + "." + sig, want: ErrMalformed, reason: "malformed"},
		{name: "signature bad base64", v: vs.hmac, token: head + "." + payload + ".***", want: ErrMalformed, reason: "malformed"},
		{name: "too long", v: vs.hmac, token: sign(t, hs, secret1, with(base, "info", strings.Repeat("x", DefaultMaxTokenBytes)), nil), want: ErrMalformed, reason: "malformed"},
		{name: "unknown permission", v: vs.hmac, token: sign(t, hs, secret1, with(base, "rooms", map[string]any{"chat:*": []string{"join", "admin"}}), nil), want: ErrMalformed, reason: "malformed"},
		{name: "bad pattern", v: vs.hmac, token: sign(t, hs, secret1, with(base, "rooms", map[string]any{"chat/*": []string{"join"}}), nil), want: ErrMalformed, reason: "malformed"},
		{name: "rooms not object", v: vs.hmac, token: sign(t, hs, secret1, with(base, "rooms", []string{"chat:*"}), nil), want: ErrMalformed, reason: "malformed"},
		{name: "perms not list", v: vs.hmac, token: sign(t, hs, secret1, with(base, "rooms", map[string]any{"chat:*": "join"}), nil), want: ErrMalformed, reason: "malformed"},
		{name: "sub not string", v: vs.hmac, token: sign(t, hs, secret1, with(base, "sub", 42), nil), want: ErrMalformed, reason: "malformed"},
		{name: "crit header", v: vs.hmac, token: sign(t, hs, secret1, base, map[string]any{"crit": []string{"exp"}}), want: ErrMalformed, reason: "malformed"},
		{name: "kid not string", v: vs.jwks, token: sign(t, rs, rsaKeyA(), base, map[string]any{"kid": 7}), want: ErrMalformed, reason: "malformed"},

		// Signatures.
		{name: "forged payload", v: vs.hmac, token: head + "." + b64json(with(base, "sub", "mallory")) + "." + sig, want: ErrSignature, reason: "signature"},
		{name: "swapped signature", v: vs.hmac, token: head + "." + payload + "." + bobSig, want: ErrSignature, reason: "signature"},
		{name: "empty signature", v: vs.hmac, token: head + "." + payload + ".", want: ErrSignature, reason: "signature"},
		{name: "hs256 wrong secret", v: vs.hmac, token: sign(t, hs, secret3, base, nil), want: ErrSignature, reason: "signature"},
		{name: "rs256 wrong key", v: vs.rsa, token: sign(t, rs, rsaKeyB(), base, nil), want: ErrSignature, reason: "signature"},
		{name: "es256 wrong key", v: vs.ec, token: sign(t, es, ecKeyB(), base, nil), want: ErrSignature, reason: "signature"},
		{name: "jwks kid names other key", v: vs.jwks, token: sign(t, rs, rsaKeyA(), base, map[string]any{"kid": "rb"}), want: ErrSignature, reason: "signature"},
		{name: "jwks unknown kid", v: vs.jwks, token: sign(t, rs, rsaKeyA(), base, map[string]any{"kid": "zz"}), want: ErrSignature, reason: "signature"},
		{name: "jwks kid of other type", v: vs.jwks, token: sign(t, rs, rsaKeyA(), base, map[string]any{"kid": "ea"}), want: ErrSignature, reason: "signature"},
		{name: "confusion on mixed", v: vs.mixed, token: sign(t, hs, pemPublic(t, &rsaKeyA().PublicKey), base, nil), want: ErrSignature, reason: "signature"},
		{name: "expired and forged", v: vs.hmac, token: sign(t, hs, secret3, with(base, "exp", now.Add(-time.Hour).Unix()), nil), want: ErrSignature, reason: "signature"},

		// Algorithms.
		{name: "alg none", v: vs.hmac, token: noneHead + "." + payload + ".", want: ErrAlgorithm, reason: "algorithm"},
		{name: "alg none rsa", v: vs.rsa, token: noneHead + "." + payload + ".", want: ErrAlgorithm, reason: "algorithm"},
		{name: "alg None", v: vs.hmac, token: b64json(`{"alg":"None"}`) + "." + payload + ".", want: ErrAlgorithm, reason: "algorithm"},
		{name: "alg none signed", v: vs.hmac, token: noneHead + "." + payload + "." + sig, want: ErrAlgorithm, reason: "algorithm"},
		{name: "hs512", v: vs.hmac, token: sign(t, jwt.SigningMethodHS512, secret1, base, nil), want: ErrAlgorithm, reason: "algorithm"},
		{name: "rs256 to hmac", v: vs.hmac, token: sign(t, rs, rsaKeyA(), base, nil), want: ErrAlgorithm, reason: "algorithm"},
		{name: "es256 to rsa", v: vs.rsa, token: sign(t, es, ecKeyA(), base, nil), want: ErrAlgorithm, reason: "algorithm"},
		{name: "ps256 to rsa", v: vs.rsa, token: sign(t, jwt.SigningMethodPS256, rsaKeyA(), base, nil), want: ErrAlgorithm, reason: "algorithm"},
		{name: "confusion hs256 with rsa pem", v: vs.rsa, token: sign(t, hs, pemPublic(t, &rsaKeyA().PublicKey), base, nil), want: ErrAlgorithm, reason: "algorithm"},
		{name: "confusion hs256 on jwks", v: vs.jwks, token: sign(t, hs, pemPublic(t, &rsaKeyA().PublicKey), base, map[string]any{"kid": "ra"}), want: ErrAlgorithm, reason: "algorithm"},
		{name: "unknown alg", v: vs.hmac, token: b64json(`{"alg":"XX999"}`) + "." + payload + "." + sig, want: ErrAlgorithm, reason: "algorithm"},

		// Time and claims.
		{name: "expired", v: vs.hmac, token: sign(t, hs, secret1, with(base, "exp", now.Add(-time.Minute).Unix()), nil), want: ErrExpired, reason: "expired"},
		{name: "expired rs256", v: vs.rsa, token: sign(t, rs, rsaKeyA(), with(base, "exp", now.Add(-time.Hour).Unix()), nil), want: ErrExpired, reason: "expired"},
		{name: "not yet valid", v: vs.hmac, token: sign(t, hs, secret1, with(base, "nbf", now.Add(time.Hour).Unix()), nil), want: ErrClaims, reason: "claims"},
		{name: "nbf within leeway", v: vs.hmac, token: sign(t, hs, secret1, with(base, "nbf", now.Add(2*time.Second).Unix()), nil), user: "alice"},
		{name: "missing sub", v: vs.hmac, token: sign(t, hs, secret1, with(base, "sub", nil), nil), want: ErrClaims, reason: "claims"},
		{name: "empty sub", v: vs.hmac, token: sign(t, hs, secret1, with(base, "sub", ""), nil), want: ErrClaims, reason: "claims"},
		{name: "wrong issuer", v: vs.strict, token: sign(t, hs, secret1, with(base, "iss", "https://evil.example", "aud", "roomd"), nil), want: ErrClaims, reason: "claims"},
		{name: "no issuer", v: vs.strict, token: sign(t, hs, secret1, with(base, "aud", "roomd"), nil), want: ErrClaims, reason: "claims"},
		{name: "wrong audience", v: vs.strict, token: sign(t, hs, secret1, with(base, "iss", "https://auth.example", "aud", "other"), nil), want: ErrClaims, reason: "claims"},
		{name: "exp required", v: vs.strict, token: sign(t, hs, secret1, with(base, "iss", "https://auth.example", "aud", "roomd", "exp", nil), nil), want: ErrClaims, reason: "claims"},
	}
}

func TestVerify(t *testing.T) {
	vs := newVerifiers(t)
	for _, tc := range verifyCases(t, vs) {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.v.Verify(tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.User != tc.user || id.Dev {
					t.Fatalf("identity = %+v, want user %q", id, tc.user)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
			if id != nil {
				t.Fatalf("identity %+v returned with error", id)
			}
			if got := Reason(err); got != tc.reason {
				t.Fatalf("Reason = %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestErrorsDoNotLeak checks that no error holds the token, one of its
// segments, or a secret.
func TestErrorsDoNotLeak(t *testing.T) {
	vs := newVerifiers(t)
	secrets := []string{string(secret1), string(secret2), string(secret3)}
	for _, tc := range verifyCases(t, vs) {
		if tc.want == nil || tc.token == "" {
			continue
		}
		_, err := tc.v.Verify(tc.token)
		msg := err.Error()
		for _, bad := range append(strings.Split(tc.token, "."), append(secrets, tc.token)...) {
			if len(bad) >= 8 && strings.Contains(msg, bad) {
				t.Errorf("%s: error %q contains %q", tc.name, msg, bad)
			}
		}
	}
}

func TestVerifyIdentity(t *testing.T) {
	v := mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := sign(t, jwt.SigningMethodHS256, secret1, jwt.MapClaims{
		"sub": "alice",
		"exp": exp.Unix(),
		"rooms": map[string]any{
			"chat:*":   []string{"join", "pub", "pub"},
			"board:42": []string{"state", "observe"},
			"empty":    []string{},
		},
		"info": map[string]any{"name": "Alice", "age": 42, "tags": []any{"a", 1.5, true, nil}, "big": uint64(1) << 63},
	}, nil)
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" || !id.Expires.Equal(exp) || id.Dev {
		t.Fatalf("identity = %+v", id)
	}
	wantGrants := []Grant{{"board:42", PermState | PermObserve}, {"chat:*", PermJoin | PermPub}}
	if len(id.Grants) != len(wantGrants) {
		t.Fatalf("grants = %v, want %v", id.Grants, wantGrants)
	}
	for i := range wantGrants {
		if id.Grants[i] != wantGrants[i] {
			t.Fatalf("grants = %v, want %v", id.Grants, wantGrants)
		}
	}
	var info map[string]any
	if err := msgpack.Unmarshal(id.Info, &info); err != nil {
		t.Fatalf("info is not msgpack: %v", err)
	}
	if info["name"] != "Alice" || info["age"] != int8(42) || info["big"] != uint64(1)<<63 {
		t.Fatalf("info = %#v", info)
	}
	if tags := info["tags"].([]any); len(tags) != 4 || tags[1] != 1.5 || tags[2] != true || tags[3] != nil {
		t.Fatalf("info tags = %#v", tags)
	}
	// Deterministic: the same claim gives the same bytes.
	id2, _ := v.Verify(tok)
	if string(id2.Info) != string(id.Info) {
		t.Fatal("info encoding is not deterministic")
	}

	for _, info := range []any{nil, "x"} {
		c := claimsFor("bob")
		if info != nil {
			c["info"] = info
		}
		id, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret1, c, nil))
		if err != nil {
			t.Fatal(err)
		}
		if info == nil && id.Info != nil {
			t.Fatalf("absent info gave %x", id.Info)
		}
		if info != nil {
			var s string
			if err := msgpack.Unmarshal(id.Info, &s); err != nil || s != "x" {
				t.Fatalf("info %q, %v", s, err)
			}
		}
	}
}

func TestDevMode(t *testing.T) {
	v := mustVerifier(t, Config{})
	if !v.Dev() {
		t.Fatal("no keys: want dev mode")
	}
	if v.Algorithms() != nil {
		t.Fatalf("dev algorithms = %v", v.Algorithms())
	}
	if err := v.Reload(); err != nil {
		t.Fatalf("dev Reload: %v", err)
	}
	for _, tok := range []string{"", "garbage", sign(t, jwt.SigningMethodHS256, secret1, claimsFor("alice"), nil)} {
		id, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("dev Verify(%q): %v", tok, err)
		}
		if !id.Dev || id.User != "" || id.Info != nil || !id.Expires.IsZero() {
			t.Fatalf("dev identity = %+v", id)
		}
		for _, room := range []string{"chat:lobby", "x", "board:42"} {
			if !id.Can(room, PermAll) || id.Perms(room) != PermAll {
				t.Fatalf("dev identity cannot do everything in %q", room)
			}
		}
	}
	if mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}}).Dev() {
		t.Fatal("with a secret: want no dev mode")
	}
}

func TestVerifierConfigDefaults(t *testing.T) {
	// Negative leeway: none. A token expired a second ago is refused.
	tok := sign(t, jwt.SigningMethodHS256, secret1, with(claimsFor("a"), "exp", time.Now().Add(-1500*time.Millisecond).Unix()), nil)
	if _, err := mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}, Leeway: -1}).Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("no leeway: %v", err)
	}
	if _, err := mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}}).Verify(tok); err != nil {
		t.Fatalf("default leeway: %v", err)
	}
	// MaxTokenBytes.
	v := mustVerifier(t, Config{HMACSecrets: [][]byte{secret1}, MaxTokenBytes: 64})
	if _, err := v.Verify(tok); !errors.Is(err, ErrMalformed) {
		t.Fatalf("over MaxTokenBytes: %v", err)
	}
	// The config's slices are copied.
	secrets := [][]byte{secret1}
	v = mustVerifier(t, Config{HMACSecrets: secrets})
	secrets[0] = secret3
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("after caller changed its slice: %v", err)
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != "HS256" {
		t.Fatalf("Algorithms = %v", got)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "key.pem", pemPublic(t, &rsaKeyA().PublicKey))
	jwksFile := writeFile(t, dir, "jwks.json", jwksJSON(jwkOf("e1", &ecKeyA().PublicKey)))
	v := mustVerifier(t, Config{PublicKeyFiles: []string{keyFile}, JWKSFile: jwksFile})
	tokA := sign(t, jwt.SigningMethodRS256, rsaKeyA(), claimsFor("a"), nil)
	tokB := sign(t, jwt.SigningMethodRS256, rsaKeyB(), claimsFor("b"), nil)
	tokE1 := sign(t, jwt.SigningMethodES256, ecKeyA(), claimsFor("e1"), map[string]any{"kid": "e1"})
	tokE2 := sign(t, jwt.SigningMethodES256, ecKeyB(), claimsFor("e2"), map[string]any{"kid": "e2"})
	check := func(tok string, want error) {
		t.Helper()
		if _, err := v.Verify(tok); !errors.Is(err, want) {
			t.Fatalf("Verify = %v, want %v", err, want)
		}
	}
	check(tokA, nil)
	check(tokB, ErrSignature)
	check(tokE1, nil)
	check(tokE2, ErrSignature)

	// Rotate both files: nothing changes until Reload.
	writeFile(t, dir, "key.pem", pemPublic(t, &rsaKeyB().PublicKey))
	writeFile(t, dir, "jwks.json", jwksJSON(jwkOf("e2", &ecKeyB().PublicKey)))
	check(tokA, nil)
	check(tokE1, nil)

	// Reload while verifying from several goroutines.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := v.Verify(tokA)
				if err == nil && id.User != "a" {
					t.Errorf("user %q", id.User)
				}
				if err != nil && !errors.Is(err, ErrSignature) {
					t.Errorf("during reload: %v", err)
				}
			}
		})
	}
	for range 5 {
		if err := v.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	check(tokA, ErrSignature)
	check(tokB, nil)
	check(tokE1, ErrSignature)
	check(tokE2, nil)

	// A broken file fails Reload and keeps the keys in force.
	writeFile(t, dir, "key.pem", []byte("not a pem file"))
	if err := v.Reload(); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	check(tokB, nil)
	check(tokA, ErrSignature)
}

func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	cases := []struct {
		name string
		cfg  Config
		tok  string
	}{
		{"HS256", Config{HMACSecrets: [][]byte{secret1}}, sign(b, jwt.SigningMethodHS256, secret1, claimsFor("a"), nil)},
		{"RS256", Config{PublicKeyFiles: []string{writeFile(b, dir, "r.pem", pemPublic(b, &rsaKeyA().PublicKey))}},
			sign(b, jwt.SigningMethodRS256, rsaKeyA(), claimsFor("a"), nil)},
		{"ES256", Config{PublicKeyFiles: []string{writeFile(b, dir, "e.pem", pemPublic(b, &ecKeyA().PublicKey))}},
			sign(b, jwt.SigningMethodES256, ecKeyA(), claimsFor("a"), nil)},
	}
	for _, c := range cases {
		v := mustVerifier(b, c.cfg)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(c.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
