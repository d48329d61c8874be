package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// Algorithms the verifier can accept, each tied to one kind of key.
const (
	algHS256 = "HS256" // HMACSecrets
	algRS256 = "RS256" // RSA public keys
	algES256 = "ES256" // EC P-256 public keys
)

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// jwkKey is a verification key loaded from a JWKS file.
type jwkKey struct {
	kid string
	key any // *rsa.PublicKey or *ecdsa.PublicKey
}

// keySet is an immutable snapshot of the configured keys; Reload swaps it
// whole.
type keySet struct {
	hmac    [][]byte
	rsa     []*rsa.PublicKey   // from PublicKeyFiles
	ec      []*ecdsa.PublicKey // from PublicKeyFiles
	jwks    []jwkKey
	methods []string // the algorithms these keys allow, for WithValidMethods
}

// loadKeys reads every key of cfg into a new keySet. Errors name the file
// and never include key material.
func loadKeys(cfg *Config) (*keySet, error) {
	ks := &keySet{}
	for i, s := range cfg.HMACSecrets {
		if len(s) == 0 {
			return nil, fmt.Errorf("auth: HMAC secret %d is empty", i)
		}
		ks.hmac = append(ks.hmac, append([]byte(nil), s...))
	}
	for _, path := range cfg.PublicKeyFiles {
		keys, err := loadPEMFile(path)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			switch k := k.(type) {
			case *rsa.PublicKey:
				ks.rsa = append(ks.rsa, k)
			case *ecdsa.PublicKey:
				ks.ec = append(ks.ec, k)
			}
		}
	}
	if cfg.JWKSFile != "" {
		keys, err := loadJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		ks.jwks = keys
	}
	if len(ks.hmac) > 0 {
		ks.methods = append(ks.methods, algHS256)
	}
	var hasRSA, hasEC = len(ks.rsa) > 0, len(ks.ec) > 0
	for _, k := range ks.jwks {
		switch k.key.(type) {
		case *rsa.PublicKey:
			hasRSA = true
		case *ecdsa.PublicKey:
			hasEC = true
		}
	}
	if hasRSA {
		ks.methods = append(ks.methods, algRS256)
	}
	if hasEC {
		ks.methods = append(ks.methods, algES256)
	}
	return ks, nil
}

// allows reports whether alg is one of the set's algorithms.
func (ks *keySet) allows(alg string) bool {
	for _, m := range ks.methods {
		if m == alg {
			return true
		}
	}
	return false
}

// errNoKey is returned by candidates when no key could verify the token.
var errNoKey = errors.New("no configured key matches the token's algorithm and kid")

// candidates returns the keys a token with this alg and kid may be signed
// with: the HMAC secrets for HS256; for RS256 and ES256, the JWKS keys with
// that kid when there are any, else the PEM keys (and, for a token without
// kid, the JWKS keys too).
func (ks *keySet) candidates(alg, kid string) ([]any, error) {
	var out []any
	switch alg {
	case algHS256:
		for _, s := range ks.hmac {
			out = append(out, s)
		}
	case algRS256, algES256:
		wantRSA := alg == algRS256
		fits := func(k any) bool {
			_, isRSA := k.(*rsa.PublicKey)
			return isRSA == wantRSA
		}
		if kid != "" {
			for _, k := range ks.jwks {
				if k.kid == kid && fits(k.key) {
					out = append(out, k.key)
				}
			}
			if len(out) > 0 {
				return out, nil
			}
		} else {
			for _, k := range ks.jwks {
				if fits(k.key) {
					out = append(out, k.key)
				}
			}
		}
		if wantRSA {
			for _, k := range ks.rsa {
				out = append(out, k)
			}
		} else {
			for _, k := range ks.ec {
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		return nil, errNoKey
	}
	return out, nil
}

// loadPEMFile returns the public keys of every PEM block in path.
func loadPEMFile(path string) ([]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: public key file: %w", err) // names the path
	}
	var keys []any
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("auth: public key file %s: PEM block %d is %q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE",
				path, n, clip(block.Type))
		}
		if err != nil {
			return nil, fmt.Errorf("auth: public key file %s: PEM block %d (%s) does not parse", path, n, block.Type)
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, fmt.Errorf("auth: public key file %s: PEM block %d: %w", path, n, err)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: public key file %s: no PEM block found", path)
	}
	return keys, nil
}

// checkPublicKey accepts RSA keys of at least minRSABits and EC P-256 keys.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("RSA key of %d bits; want at least %d", bits, minRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("EC key on %s; want P-256 (ES256)", k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T; want RSA or EC P-256", pub)
}

// jwkJSON is one key of a JWKS document, as far as it matters here.
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// loadJWKSFile returns the usable signing keys of the JWKS document in path.
func loadJWKSFile(path string) ([]jwkKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err) // names the path
	}
	var doc struct {
		Keys []jwkJSON `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("auth: JWKS file %s: not valid JSON (at byte %d)", path, syn.Offset)
		}
		return nil, fmt.Errorf("auth: JWKS file %s: not a JWKS document {\"keys\": [...]}", path)
	}
	var keys []jwkKey
	for i, j := range doc.Keys {
		key, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS file %s: key %d (kid %q): %w", path, i, clip(j.Kid), err)
		}
		if key != nil {
			keys = append(keys, jwkKey{kid: j.Kid, key: key})
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: JWKS file %s: no usable RS256 or ES256 signing key", path)
	}
	return keys, nil
}

// publicKey decodes an RSA or EC P-256 signing key. It returns nil, nil for a
// key this package does not use (another type, curve, algorithm or use), and
// an error for a key it would use but cannot decode.
func (j *jwkJSON) publicKey() (any, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, nil
	}
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && j.Alg != algRS256 {
			return nil, nil
		}
		n, err := b64uint(j.N)
		if err != nil {
			return nil, fmt.Errorf("bad %q: %w", "n", err)
		}
		e, err := b64uint(j.E)
		if err != nil {
			return nil, fmt.Errorf("bad %q: %w", "e", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New(`bad "e": want an odd exponent of at least 3`)
		}
		k := &rsa.PublicKey{N: n, E: int(e.Int64())}
		if err := checkPublicKey(k); err != nil {
			return nil, err
		}
		return k, nil
	case "EC":
		if j.Crv != "P-256" || (j.Alg != "" && j.Alg != algES256) {
			return nil, nil
		}
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New(`bad "x" or "y": want 32 bytes each, base64url`)
		}
		point := append(append([]byte{4}, x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, errors.New("point is not on the P-256 curve")
		}
		return k, nil
	}
	return nil, nil
}

// b64 decodes base64url, with or without padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// b64uint decodes a base64url big-endian unsigned integer.
func b64uint(s string) (*big.Int, error) {
	b, err := b64(s)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}
