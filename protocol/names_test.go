package protocol

import (
	"strings"
	"testing"
)

func TestValidRoomName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"chat:lobby", true},
		{"board:42", true},
		{"A-Z_a.z:0-9@x", true},
		{"user@example.com", true},
		{":", true},
		{"a:b:c", true},
		{strings.Repeat("x", MaxRoomName), true},
		{"", false},
		{strings.Repeat("x", MaxRoomName+1), false},
		{"chat lobby", false},
		{"chat/lobby", false},
		{"chat*", false},
		{"room?", false},
		{"tab\t", false},
		{"nul\x00", false},
		{"lobby\n", false},
		{"héllo", false},
		{"日本", false},
		{"a%20b", false},
		{"a+b", false},
		{"{a}", false},
	}
	for _, tc := range tests {
		if got := ValidRoomName(tc.name); got != tc.ok {
			t.Errorf("ValidRoomName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
	// Every byte outside the allowed set is refused.
	const allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-"
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(allowed, byte(c)) >= 0
		if got := ValidRoomName("x" + string([]byte{byte(c)})); got != want {
			t.Errorf("byte %#02x: ValidRoomName = %v, want %v", c, got, want)
		}
	}
}

func TestNamespace(t *testing.T) {
	tests := []struct{ room, ns string }{
		{"chat:lobby", "chat"},
		{"board:42:layer:1", "board"},
		{"lobby", ""},
		{":x", ""},
		{"x:", "x"},
		{"", ""},
		{"a@b.c:d", "a@b.c"},
	}
	for _, tc := range tests {
		if got := Namespace(tc.room); got != tc.ns {
			t.Errorf("Namespace(%q) = %q, want %q", tc.room, got, tc.ns)
		}
	}
}
