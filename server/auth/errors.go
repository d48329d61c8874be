package auth

import "errors"

// Sentinel errors. Verify and the parsers wrap them with %w and some detail;
// test with errors.Is. No message ever holds a token, a secret or key
// material.
var (
	// ErrMissing: no token was presented.
	ErrMissing = errors.New("auth: token missing")
	// ErrMalformed: the token (or a grant, pattern or permission list) cannot
	// be parsed: wrong number of segments, bad base64 or JSON, a claim of the
	// wrong type, an unknown permission name or a bad room pattern.
	ErrMalformed = errors.New("auth: token malformed")
	// ErrExpired: the token's "exp" has passed (beyond the leeway).
	ErrExpired = errors.New("auth: token expired")
	// ErrSignature: the signature does not verify under any configured key
	// of the token's algorithm, or no key matches the token's "kid".
	ErrSignature = errors.New("auth: token signature invalid")
	// ErrAlgorithm: the token's "alg" is not one the configured keys allow
	// ("none" never is).
	ErrAlgorithm = errors.New("auth: token algorithm not accepted")
	// ErrClaims: the claims are well-formed but unacceptable: no "sub", "nbf"
	// in the future, wrong issuer or audience, or "exp" required but absent.
	ErrClaims = errors.New("auth: token claims invalid")
)

// Reasons returned by [Reason]: short, stable labels for metrics.
const (
	ReasonMissing   = "missing"
	ReasonMalformed = "malformed"
	ReasonExpired   = "expired"
	ReasonSignature = "signature"
	ReasonAlgorithm = "algorithm"
	ReasonClaims    = "claims"
	// ReasonOther labels an error that wraps none of this package's
	// sentinels.
	ReasonOther = "other"
)

// Reason returns the metrics label of err: one of the Reason constants, or ""
// for a nil error.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrMissing):
		return ReasonMissing
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrExpired):
		return ReasonExpired
	case errors.Is(err, ErrSignature):
		return ReasonSignature
	case errors.Is(err, ErrAlgorithm):
		return ReasonAlgorithm
	case errors.Is(err, ErrClaims):
		return ReasonClaims
	}
	return ReasonOther
}
