package auth

import "time"

// Defaults filled in by NewVerifier for zero Config fields.
const (
	// DefaultLeeway is the clock skew tolerated on "exp" and "nbf".
	DefaultLeeway = 5 * time.Second
	// DefaultMaxTokenBytes is the longest token Verify reads.
	DefaultMaxTokenBytes = 16 << 10
)

// Config says which tokens a Verifier accepts. With no HMACSecrets, no
// PublicKeyFiles and no JWKSFile at all, the Verifier is in dev mode (see
// [Verifier.Dev]).
type Config struct {
	// HMACSecrets are the shared secrets of HS256 tokens. A token that
	// verifies under any of them is accepted, so a new secret can be rolled
	// out next to the old one. Each must be non-empty; use at least 32
	// random bytes. Nil or empty means HS256 is not accepted.
	HMACSecrets [][]byte

	// PublicKeyFiles are PEM files of public keys ("PUBLIC KEY",
	// "RSA PUBLIC KEY" or "CERTIFICATE" blocks; a file may hold several).
	// RSA keys (2048 bits or more) verify RS256 tokens, EC P-256 keys verify
	// ES256 tokens; any other key is a configuration error. A token that
	// verifies under any key of its algorithm is accepted (rotation). The
	// files are read by NewVerifier and again by Reload. Nil or empty means
	// none.
	PublicKeyFiles []string

	// JWKSFile is the path of a JSON Web Key Set document (RFC 7517) on disk,
	// read by NewVerifier and again by Reload. Its RSA and EC P-256 signing
	// keys verify RS256 and ES256 tokens; other keys (symmetric, other
	// curves or algorithms, "use" other than "sig") are skipped, but the file
	// must hold at least one usable key. A token whose "kid" names keys of
	// the set is checked against those only; a token with an unknown "kid"
	// is checked against PublicKeyFiles only; a token without "kid" against
	// every key of its algorithm. Empty means no JWKS.
	JWKSFile string

	// Leeway is the clock skew tolerated when checking "exp" and "nbf".
	// Zero means DefaultLeeway (5 s); a negative value means none.
	Leeway time.Duration

	// Issuer, when set, must equal the token's "iss". Empty means "iss" is
	// not checked.
	Issuer string

	// Audience, when set, must be (one of) the token's "aud". Empty means
	// "aud" is not checked.
	Audience string

	// RequireExpiry makes "exp" mandatory. False (the zero value) accepts
	// tokens without "exp" as never expiring; an "exp" that is present is
	// always enforced.
	RequireExpiry bool

	// MaxTokenBytes bounds the length of a token Verify will parse; a longer
	// one is ErrMalformed. Zero means DefaultMaxTokenBytes (16 KiB).
	MaxTokenBytes int
}

// hasKeys reports whether any key is configured, i.e. not dev mode.
func (c *Config) hasKeys() bool {
	return len(c.HMACSecrets) > 0 || len(c.PublicKeyFiles) > 0 || c.JWKSFile != ""
}
