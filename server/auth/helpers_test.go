package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test secrets: recognisable, so a leak in an error message is easy to spot.
var (
	secret1 = []byte("rotation-secret-one-0123456789abcdef")
	secret2 = []byte("rotation-secret-two-0123456789abcdef")
	secret3 = []byte("some-other-secret-nobody-configured!")
)

// Test keys, generated once per run (RSA generation is slow under -race).
var (
	rsaKeyA = sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) })
	rsaKeyB = sync.OnceValue(func() *rsa.PrivateKey { return genRSA(2048) })
	ecKeyA  = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P256()) })
	ecKeyB  = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P256()) })
)

func genRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func genEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// pemPublic returns the PKIX PEM encoding of pub.
func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data to name in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jwkOf returns the JWK of an RSA or EC public key.
func jwkOf(kid string, pub any) map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(b[1:33]), "y": enc(b[33:])}
	}
	panic("unsupported key")
}

// jwksJSON returns a JWKS document of keys.
func jwksJSON(keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// sign signs claims with method and key, adding header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor returns basic valid claims for user, expiring in an hour.
func claimsFor(user string) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":   user,
		"exp":   time.Now().Add(time.Hour).Unix(),
		"rooms": map[string]any{"chat:*": []string{"join", "pub"}},
	}
}

// with returns a copy of c with kv set (a nil value deletes the key).
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// b64json base64url-encodes the JSON of v (or v itself if it is a string).
func b64json(v any) string {
	if s, ok := v.(string); ok {
		return base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// mustVerifier builds a Verifier or fails the test.
func mustVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

var (
	jwtRS256 = jwt.SigningMethodRS256
	jwtES256 = jwt.SigningMethodES256
)
