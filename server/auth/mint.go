package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint issues an HS256 token for user sub, signed with secret, for the
// `roomd token` command and for tests. grants become the "rooms" claim (two
// grants of one pattern are united), info (nil for none) the "info" claim; it
// must marshal to JSON. The token carries "iat"; it expires after ttl, rounded
// up to a whole second, or never when ttl is zero. A negative ttl, an empty
// secret or sub, or an invalid grant is an error.
func Mint(secret []byte, sub string, grants []Grant, info any, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("auth: mint: empty secret")
	}
	if sub == "" {
		return "", errors.New("auth: mint: empty sub")
	}
	if ttl < 0 {
		return "", fmt.Errorf("auth: mint: negative ttl %v", ttl)
	}
	perms := make(map[string]Perm, len(grants))
	for _, g := range grants {
		if err := ValidPattern(g.Pattern); err != nil {
			return "", fmt.Errorf("auth: mint: %w", err)
		}
		if g.Perms == 0 || g.Perms&^PermAll != 0 {
			return "", fmt.Errorf("%w: mint: grant %q: permissions %q", ErrMalformed, g.Pattern, g.Perms)
		}
		perms[g.Pattern] |= g.Perms
	}
	rooms := make(map[string][]string, len(perms))
	for pattern, p := range perms {
		rooms[pattern] = p.Names()
	}
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "iat": now.Unix()}
	if len(rooms) > 0 {
		c["rooms"] = rooms
	}
	if info != nil {
		c["info"] = info
	}
	if ttl > 0 {
		exp := now.Add(ttl)
		if exp.Truncate(time.Second) != exp {
			exp = exp.Truncate(time.Second).Add(time.Second)
		}
		c["exp"] = exp.Unix()
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return tok, nil
}
