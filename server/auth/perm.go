package auth

import (
	"fmt"
	"strings"
)

// Perm is a set of permissions a token grants in a room, as a bitmask.
type Perm uint8

// The permissions of docs/PROTOCOL.md §5. Their names in tokens and flags are
// the lower-case words after "Perm".
const (
	// PermJoin allows joining the room (and receiving its events).
	PermJoin Perm = 1 << iota
	// PermPub allows publishing messages, durable or ephemeral.
	PermPub
	// PermPres allows setting one's presence data.
	PermPres
	// PermState allows setting and deleting state keys.
	PermState
	// PermObserve allows following the room read-only over SSE.
	PermObserve

	// PermAll is every permission.
	PermAll = PermJoin | PermPub | PermPres | PermState | PermObserve
)

// permNames lists each permission with its name, in canonical order.
var permNames = [...]struct {
	p    Perm
	name string
}{
	{PermJoin, "join"},
	{PermPub, "pub"},
	{PermPres, "pres"},
	{PermState, "state"},
	{PermObserve, "observe"},
}

// PermByName returns the permission called name ("join", "pub", "pres",
// "state", "observe"), and false for any other name. Names are case-sensitive.
func PermByName(name string) (Perm, bool) {
	for _, pn := range permNames {
		if pn.name == name {
			return pn.p, true
		}
	}
	return 0, false
}

// ParsePerms parses a comma-separated list of permission names, such as
// "join,pub". Spaces around names are ignored; an empty string (or one of only
// commas and spaces) is the empty set. An unknown name is an error wrapping
// [ErrMalformed].
func ParsePerms(s string) (Perm, error) {
	var p Perm
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		q, ok := PermByName(name)
		if !ok {
			return 0, fmt.Errorf("%w: unknown permission %q", ErrMalformed, clip(name))
		}
		p |= q
	}
	return p, nil
}

// String returns the permission names joined by commas in canonical order
// ("join,pub,pres,state,observe"); the empty set is "". Bits outside PermAll
// are shown as one hex term, so String never hides anything. For sets within
// PermAll, ParsePerms(p.String()) == p.
func (p Perm) String() string {
	if p == 0 {
		return ""
	}
	var b strings.Builder
	for _, pn := range permNames {
		if p&pn.p != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pn.name)
		}
	}
	if rest := p &^ PermAll; rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "0x%02x", uint8(rest))
	}
	return b.String()
}

// Names returns the permission names of p in canonical order, as they appear
// in a token's "rooms" claim. Bits outside PermAll are left out.
func (p Perm) Names() []string {
	var names []string
	for _, pn := range permNames {
		if p&pn.p != 0 {
			names = append(names, pn.name)
		}
	}
	return names
}

// clip shortens an untrusted string quoted in an error message.
func clip(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
