package auth

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
)

func TestNewVerifierErrors(t *testing.T) {
	dir := t.TempDir()
	rsaPEM := pemPublic(t, &rsaKeyA().PublicKey)
	rsaBody := strings.Split(string(rsaPEM), "\n")[1] // a line of key material
	privDER, err := x509.MarshalPKCS8PrivateKey(ecKeyA())
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	p384 := genEC(elliptic.P384())
	small := genRSA(1024)
	corrupt := strings.Replace(string(rsaPEM), rsaBody, strings.Repeat("A", len(rsaBody)), 1)

	goodJWK := jwkOf("good", &rsaKeyA().PublicKey)
	badN := jwkOf("bad-n", &rsaKeyA().PublicKey)
	badN["n"] = "!!!"
	badE := jwkOf("bad-e", &rsaKeyA().PublicKey)
	badE["e"] = base64.RawURLEncoding.EncodeToString([]byte{2})
	offCurve := jwkOf("off", &ecKeyA().PublicKey)
	offCurve["y"] = offCurve["x"]
	shortX := jwkOf("short", &ecKeyA().PublicKey)
	shortX["x"] = "AAAA"

	tests := []struct {
		name   string
		file   string // written to dir under this name, and named in the error
		data   []byte
		isJWKS bool
		secret []byte
	}{
		{name: "missing file", file: "absent.pem"},
		{name: "not pem", file: "text.pem", data: []byte("hello")},
		{name: "private key", file: "priv.pem", data: privPEM},
		{name: "corrupt der", file: "corrupt.pem", data: []byte(corrupt)},
		{name: "p384", file: "p384.pem", data: pemPublic(t, &p384.PublicKey)},
		{name: "rsa 1024", file: "small.pem", data: pemPublic(t, &small.PublicKey)},
		{name: "one bad block of two", file: "two.pem", data: append(append([]byte{}, rsaPEM...), privPEM...)},
		{name: "jwks missing", file: "absent.json", isJWKS: true},
		{name: "jwks not json", file: "bad.json", data: []byte(`{"keys": [`), isJWKS: true},
		{name: "jwks wrong shape", file: "shape.json", data: []byte(`{"keys": {"kty": "RSA"}}`), isJWKS: true},
		{name: "jwks empty", file: "empty.json", data: jwksJSON(), isJWKS: true},
		{name: "jwks only unusable", file: "unusable.json", data: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-384","x":"AA","y":"AA"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`), isJWKS: true},
		{name: "jwks bad n", file: "badn.json", data: jwksJSON(goodJWK, badN), isJWKS: true},
		{name: "jwks bad e", file: "bade.json", data: jwksJSON(badE), isJWKS: true},
		{name: "jwks small rsa", file: "smalln.json", data: jwksJSON(jwkOf("s", &small.PublicKey)), isJWKS: true},
		{name: "jwks off curve", file: "off.json", data: jwksJSON(offCurve), isJWKS: true},
		{name: "jwks short x", file: "short.json", data: jwksJSON(shortX), isJWKS: true},
		{name: "empty secret", secret: []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			path := dir + "/" + tc.file
			switch {
			case tc.secret != nil:
				cfg.HMACSecrets = [][]byte{secret1, tc.secret}
			case tc.isJWKS:
				cfg.JWKSFile = path
			default:
				cfg.PublicKeyFiles = []string{path}
			}
			if tc.data != nil {
				writeFile(t, dir, tc.file, tc.data)
			}
			v, err := NewVerifier(cfg)
			if err == nil {
				t.Fatalf("NewVerifier accepted it: dev=%v", v.Dev())
			}
			msg := err.Error()
			t.Log(msg)
			if tc.file != "" && !strings.Contains(msg, path) {
				t.Errorf("error %q does not name %s", msg, path)
			}
			for _, material := range []string{rsaBody, string(secret1), "AQAB"} {
				if strings.Contains(msg, material) {
					t.Errorf("error %q contains key material", msg)
				}
			}
		})
	}
}

func TestPublicKeyFormats(t *testing.T) {
	dir := t.TempDir()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKeyB().PublicKey)})
	both := append(pemPublic(t, &rsaKeyA().PublicKey), pemPublic(t, &ecKeyA().PublicKey)...)
	v := mustVerifier(t, Config{PublicKeyFiles: []string{
		writeFile(t, dir, "both.pem", both),
		writeFile(t, dir, "pkcs1.pem", pkcs1),
	}})
	if got := strings.Join(v.Algorithms(), ","); got != "RS256,ES256" {
		t.Fatalf("Algorithms = %s", got)
	}
	for _, tok := range []string{
		sign(t, jwtRS256, rsaKeyA(), claimsFor("a"), nil),
		sign(t, jwtRS256, rsaKeyB(), claimsFor("b"), nil),
		sign(t, jwtES256, ecKeyA(), claimsFor("c"), nil),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}
