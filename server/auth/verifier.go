package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks tokens against the keys of a Config. It is safe for
// concurrent use, Reload included.
type Verifier struct {
	cfg    Config // defaults filled in
	dev    bool
	keys   atomic.Pointer[verifierState]
	reload sync.Mutex // one Reload at a time; Verify never takes it
}

// verifierState is what Reload swaps: the keys and the parser built for them.
type verifierState struct {
	keys   *keySet
	parser *jwt.Parser
}

// NewVerifier validates cfg, fills its zero values and loads its keys. Errors
// name the offending file or secret index, never key material.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	} else if cfg.Leeway < 0 {
		cfg.Leeway = 0
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	cfg.HMACSecrets = append([][]byte(nil), cfg.HMACSecrets...)
	cfg.PublicKeyFiles = append([]string(nil), cfg.PublicKeyFiles...)
	v := &Verifier{cfg: cfg, dev: !cfg.hasKeys()}
	if v.dev {
		return v, nil
	}
	st, err := v.load()
	if err != nil {
		return nil, err
	}
	v.keys.Store(st)
	return v, nil
}

// load reads the keys and builds a parser restricted to their algorithms.
func (v *Verifier) load() (*verifierState, error) {
	ks, err := loadKeys(&v.cfg)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(ks.methods),
		jwt.WithLeeway(v.cfg.Leeway),
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if v.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.cfg.Audience))
	}
	if v.cfg.RequireExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	return &verifierState{keys: ks, parser: jwt.NewParser(opts...)}, nil
}

// Dev reports whether the Verifier is in dev mode: no key of any kind is
// configured, and Verify accepts anyone as an anonymous user with every
// permission.
func (v *Verifier) Dev() bool { return v.dev }

// Leeway is the clock skew tolerated on "exp" and "nbf" (Config.Leeway,
// defaults filled; zero when none). A connection whose token expires lives
// until Expires plus Leeway, the last moment Verify would still accept it.
func (v *Verifier) Leeway() time.Duration { return v.cfg.Leeway }

// Algorithms returns the algorithms the configured keys accept (a subset of
// HS256, RS256, ES256), nil in dev mode.
func (v *Verifier) Algorithms() []string {
	st := v.keys.Load()
	if st == nil {
		return nil
	}
	return append([]string(nil), st.keys.methods...)
}

// Reload re-reads PublicKeyFiles and JWKSFile (the server calls it on
// SIGHUP) and swaps the new keys in atomically: a Verify running meanwhile
// uses either the old keys or the new ones. On error the old keys stay in
// force. In dev mode it does nothing.
func (v *Verifier) Reload() error {
	if v.dev {
		return nil
	}
	v.reload.Lock()
	defer v.reload.Unlock()
	st, err := v.load()
	if err != nil {
		return err
	}
	v.keys.Store(st)
	return nil
}

// claims are the JWT claims roomd reads.
type claims struct {
	jwt.RegisteredClaims
	Rooms map[string][]string `json:"rooms"`
	Info  json.RawMessage     `json:"info"`
}

// Verify checks token and returns the Identity it carries.
//
// The token must be a JWS in compact form whose "alg" is allowed by the
// configured keys (HS256 for HMACSecrets, RS256 for RSA keys, ES256 for EC
// keys; never "none"), signed by one of those keys. "exp" is optional (unless
// RequireExpiry) but enforced when present, as is "nbf", both with Leeway;
// "iss" and "aud" are checked when Config sets them. "sub" must be a
// non-empty string. "rooms", when present, is an object from room pattern to
// a list of permission names; "info" may be any JSON value.
//
// In dev mode Verify ignores the token and returns an anonymous Identity
// (User "", Dev true) that may do everything.
//
// Errors wrap one of ErrMissing, ErrMalformed, ErrExpired, ErrSignature,
// ErrAlgorithm and ErrClaims.
func (v *Verifier) Verify(token string) (*Identity, error) {
	if v.dev {
		return &Identity{Dev: true, Grants: []Grant{{Pattern: "*", Perms: PermAll}}}, nil
	}
	if token == "" {
		return nil, ErrMissing
	}
	if len(token) > v.cfg.MaxTokenBytes {
		return nil, fmt.Errorf("%w: token is %d bytes, over the limit of %d", ErrMalformed, len(token), v.cfg.MaxTokenBytes)
	}
	st := v.keys.Load()

	// Look at the header first, so that a refused algorithm is reported as
	// such (jwt reports it as a bad signature) and "none" never gets further.
	alg, kid, err := peekHeader(token)
	if err != nil {
		return nil, err
	}
	if !st.keys.allows(alg) {
		return nil, fmt.Errorf("%w: %q (accepted: %s)", ErrAlgorithm, clip(alg), strings.Join(st.keys.methods, ", "))
	}

	var c claims
	_, err = st.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) {
		keys, err := st.keys.candidates(alg, kid)
		if err != nil {
			return nil, err
		}
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
		for i, k := range keys {
			set.Keys[i] = k
		}
		return set, nil
	})
	if err != nil {
		return nil, v.classify(err, &c)
	}
	return identityFrom(&c)
}

// peekHeader decodes the token's header and returns its "alg" and "kid".
func peekHeader(token string) (alg, kid string, err error) {
	if n := strings.Count(token, "."); n != 2 {
		return "", "", fmt.Errorf("%w: want 3 dot-separated segments, got %d", ErrMalformed, n+1)
	}
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", "", fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg  any `json:"alg"`
		Kid  any `json:"kid"`
		Crit any `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", "", fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	alg, ok := h.Alg.(string)
	if !ok || alg == "" {
		return "", "", fmt.Errorf("%w: header has no \"alg\"", ErrMalformed)
	}
	if h.Crit != nil {
		// RFC 7515 §4.1.11: critical extensions we do not know must be refused.
		return "", "", fmt.Errorf("%w: header \"crit\" extensions are not supported", ErrMalformed)
	}
	if h.Kid != nil {
		if kid, ok = h.Kid.(string); !ok {
			return "", "", fmt.Errorf("%w: header \"kid\" is not a string", ErrMalformed)
		}
	}
	return alg, kid, nil
}

// classify maps an error of the jwt parser to this package's sentinels, with
// messages of our own: jwt's could quote parts of the token.
func (v *Verifier) classify(err error, c *claims) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		var ute *json.UnmarshalTypeError
		var b64 base64.CorruptInputError
		switch {
		case errors.As(err, &ute) && ute.Field != "":
			field := strings.TrimPrefix(ute.Field, "RegisteredClaims.")
			return fmt.Errorf("%w: claim %q has the wrong type", ErrMalformed, clip(field))
		case errors.As(err, &b64):
			return fmt.Errorf("%w: payload or signature is not base64url", ErrMalformed)
		}
		return fmt.Errorf("%w: claims are not a valid JSON object", ErrMalformed)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if errors.Is(err, errNoKey) {
			return fmt.Errorf("%w: %w", ErrSignature, errNoKey)
		}
		return fmt.Errorf("%w: token cannot be verified", ErrSignature)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: no configured key verifies it", ErrSignature)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("%w: issuer does not match", ErrClaims)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Errorf("%w: audience does not match", ErrClaims)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		var missing []string
		if v.cfg.RequireExpiry && c.ExpiresAt == nil {
			missing = append(missing, "exp")
		}
		if v.cfg.Issuer != "" && c.Issuer == "" {
			missing = append(missing, "iss")
		}
		if v.cfg.Audience != "" && len(c.Audience) == 0 {
			missing = append(missing, "aud")
		}
		return fmt.Errorf("%w: required claim missing: %s", ErrClaims, strings.Join(missing, ", "))
	case errors.Is(err, jwt.ErrTokenExpired):
		if c.ExpiresAt != nil {
			return fmt.Errorf("%w: at %s", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		if c.NotBefore != nil {
			return fmt.Errorf("%w: not valid before %s", ErrClaims, c.NotBefore.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%w: not valid yet", ErrClaims)
	}
	return fmt.Errorf("%w: rejected", ErrClaims)
}

// identityFrom builds the Identity of verified claims.
func identityFrom(c *claims) (*Identity, error) {
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: \"sub\" is missing or empty", ErrClaims)
	}
	id := &Identity{User: c.Subject}
	if c.ExpiresAt != nil {
		id.Expires = c.ExpiresAt.Time
	}
	grants, err := grantsFromClaim(c.Rooms)
	if err != nil {
		return nil, err
	}
	id.Grants = grants
	if id.Info, err = jsonToMsgpack(c.Info); err != nil {
		return nil, err
	}
	return id, nil
}
