package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// APIKeys is the set of keys that authenticate callers of the HTTP API. Any
// of them is accepted, so a new key can be rolled out next to the old one.
// It is immutable and safe for concurrent use.
type APIKeys struct {
	digests [][sha256.Size]byte
}

// NewAPIKeys returns the set of keys; blank entries (after trimming spaces)
// are ignored.
func NewAPIKeys(keys []string) *APIKeys {
	a := &APIKeys{}
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			a.digests = append(a.digests, sha256.Sum256([]byte(k)))
		}
	}
	return a
}

// Empty reports whether the set holds no key; Check then accepts nothing.
func (a *APIKeys) Empty() bool { return a == nil || len(a.digests) == 0 }

// Check reports whether s, either a bare key or an Authorization header
// value "Bearer <key>", is one of the keys. It compares SHA-256 digests in
// constant time and always against every key, so neither the keys' lengths
// nor which key matched show in its timing. An empty s never matches.
func (a *APIKeys) Check(s string) bool {
	if a == nil {
		return false
	}
	key := strings.TrimSpace(s)
	if tok, ok := bearer(key); ok {
		key = tok
	}
	if key == "" {
		return false
	}
	d := sha256.Sum256([]byte(key))
	match := 0
	for i := range a.digests {
		match |= subtle.ConstantTimeCompare(d[:], a.digests[i][:])
	}
	return match == 1
}
