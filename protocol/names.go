package protocol

import "strings"

// Limits of the wire format itself; configurable limits live in the server's
// and rooms' configuration.
const (
	MaxRoomName       = 128 // bytes
	MaxIdempotencyKey = 64  // bytes
	MaxStateKey       = 256 // bytes
)

// ValidRoomName reports whether name is 1-128 bytes of [A-Za-z0-9_.:@-].
func ValidRoomName(name string) bool {
	if len(name) == 0 || len(name) > MaxRoomName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// Namespace returns the part of a room name before its first ':', or "" when
// the name has none.
func Namespace(room string) string {
	if i := strings.IndexByte(room, ':'); i >= 0 {
		return room[:i]
	}
	return ""
}
