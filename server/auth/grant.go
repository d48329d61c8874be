package auth

import (
	"fmt"
	"slices"
	"strings"
)

// MaxPatternLen is the longest room pattern accepted, in bytes: the longest
// room name.
const MaxPatternLen = 128

// Grant gives a set of permissions in every room whose name matches Pattern.
//
// A pattern is 1 to MaxPatternLen bytes of room-name characters
// ([A-Za-z0-9_.:@-]) and '*', where each '*' matches any run of characters,
// the empty one included: "board:42" names one room, "chat:*" every room of
// the chat namespace, "board:4*" board:4, board:42 and board:4x, and "*"
// every room.
type Grant struct {
	Pattern string
	Perms   Perm
}

// ParseGrant parses the "pattern=perm,perm" form of the `roomd token --room`
// flag, such as "chat:*=join,pub,pres". The pattern must be valid (see
// [Grant]) and the list must name at least one known permission. Errors wrap
// [ErrMalformed].
func ParseGrant(s string) (Grant, error) {
	pattern, list, ok := strings.Cut(s, "=")
	if !ok {
		return Grant{}, fmt.Errorf("%w: grant %q: want pattern=perm,perm", ErrMalformed, clip(s))
	}
	pattern = strings.TrimSpace(pattern)
	if err := ValidPattern(pattern); err != nil {
		return Grant{}, err
	}
	p, err := ParsePerms(list)
	if err != nil {
		return Grant{}, fmt.Errorf("grant %q: %w", clip(pattern), err)
	}
	if p == 0 {
		return Grant{}, fmt.Errorf("%w: grant %q: no permissions", ErrMalformed, clip(pattern))
	}
	return Grant{Pattern: pattern, Perms: p}, nil
}

// String returns the grant in the form ParseGrant reads.
func (g Grant) String() string { return g.Pattern + "=" + g.Perms.String() }

// Matches reports whether room matches the grant's pattern.
func (g Grant) Matches(room string) bool { return matchPattern(g.Pattern, room) }

// ValidPattern checks a room pattern (see [Grant]); the error wraps
// [ErrMalformed].
func ValidPattern(pattern string) error {
	if why := patternProblem(pattern); why != "" {
		return fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	return nil
}

// patternProblem says what is wrong with pattern, or "" if nothing is.
func patternProblem(pattern string) string {
	if pattern == "" || len(pattern) > MaxPatternLen {
		return fmt.Sprintf("room pattern must be 1-%d bytes, got %d", MaxPatternLen, len(pattern))
	}
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c != '*' && !roomChar(c) {
			return fmt.Sprintf("room pattern %q: bad character at byte %d", clip(pattern), i)
		}
	}
	return ""
}

// roomChar reports whether c may appear in a room name.
func roomChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '.', ':', '@', '-':
		return true
	}
	return false
}

// matchPattern reports whether name matches pattern, where '*' matches any
// run of bytes and every other byte matches itself. It does not allocate and
// runs in O(len(pattern)·len(name)) at worst: on a mismatch it only ever
// backtracks to the latest '*', which suffices for this kind of glob.
func matchPattern(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0 // position of the last '*' seen, and where its match ends
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			// Let the last '*' swallow one more byte and retry after it.
			mark++
			p, n = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// grantsFromClaim turns a token's "rooms" claim into grants sorted by
// pattern. An unknown permission name or a bad pattern is ErrMalformed. A
// pattern with an empty list grants nothing and is left out.
func grantsFromClaim(rooms map[string][]string) ([]Grant, error) {
	if len(rooms) == 0 {
		return nil, nil
	}
	grants := make([]Grant, 0, len(rooms))
	for pattern, names := range rooms {
		if why := patternProblem(pattern); why != "" {
			return nil, fmt.Errorf("%w: claim \"rooms\": %s", ErrMalformed, why)
		}
		var p Perm
		for _, name := range names {
			q, ok := PermByName(name)
			if !ok {
				return nil, fmt.Errorf("%w: claim \"rooms\": unknown permission %q", ErrMalformed, clip(name))
			}
			p |= q
		}
		if p != 0 {
			grants = append(grants, Grant{Pattern: pattern, Perms: p})
		}
	}
	slices.SortFunc(grants, func(a, b Grant) int { return strings.Compare(a.Pattern, b.Pattern) })
	return grants, nil
}

// GrantsFromRooms turns a "rooms" map (as a token's claim, or a connect
// hook's answer) into grants, as for a token.
func GrantsFromRooms(rooms map[string][]string) ([]Grant, error) { return grantsFromClaim(rooms) }
