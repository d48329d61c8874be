package auth

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Identity is who a verified token says the client is, and what it may do.
// The server keeps one per connection; treat it as read-only once shared.
type Identity struct {
	// User is the token's "sub" claim; "" only in dev mode.
	User string
	// Info is the token's "info" claim re-encoded as msgpack (map keys
	// sorted, integers compacted), or nil when the claim is absent or null.
	Info msgpack.RawMessage
	// Expires is the token's "exp" claim; the zero Time means it never
	// expires.
	Expires time.Time
	// Grants are the token's "rooms" claim, sorted by pattern, one per
	// pattern. Empty means no permission anywhere.
	Grants []Grant
	// Dev marks the anonymous identity of dev mode: it may do everything.
	Dev bool
}

// Perms returns every permission id has in room: the union of the grants
// whose pattern matches it, or PermAll in dev mode. A nil Identity has none.
// It does not allocate.
func (id *Identity) Perms(room string) Perm {
	if id == nil {
		return 0
	}
	if id.Dev {
		return PermAll
	}
	var have Perm
	for i := range id.Grants {
		g := &id.Grants[i]
		if g.Perms&^have != 0 && matchPattern(g.Pattern, room) {
			have |= g.Perms
		}
	}
	return have
}

// Can reports whether id holds every permission of p in room (Dev holds them
// all everywhere; otherwise the grants matching room are united). A nil
// Identity can do nothing; p == 0 is always allowed. Can does not validate
// the room name and does not allocate.
func (id *Identity) Can(room string, p Perm) bool {
	if id == nil {
		return false
	}
	if id.Dev || p == 0 {
		return true
	}
	var have Perm
	for i := range id.Grants {
		g := &id.Grants[i]
		if g.Perms&p&^have == 0 {
			continue // nothing this grant could add
		}
		if matchPattern(g.Pattern, room) {
			have |= g.Perms
			if have&p == p {
				return true
			}
		}
	}
	return false
}

// Expired reports whether the identity's token has expired at now. An
// identity without expiry never expires.
func (id *Identity) Expired(now time.Time) bool {
	return id != nil && !id.Expires.IsZero() && !now.Before(id.Expires)
}
