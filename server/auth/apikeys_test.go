package auth

import "testing"

func TestAPIKeys(t *testing.T) {
	keys := NewAPIKeys([]string{"old-key-0123456789", " new-key-abcdefghij ", "", "   "})
	if keys.Empty() {
		t.Fatal("Empty with two keys")
	}
	tests := []struct {
		in   string
		want bool
	}{
		{"old-key-0123456789", true},
		{"new-key-abcdefghij", true},
		{"Bearer old-key-0123456789", true},
		{"bearer new-key-abcdefghij", true},
		{"BEARER  new-key-abcdefghij ", true},
		{"  old-key-0123456789\t", true},
		{"", false},
		{"Bearer", false},
		{"Bearer ", false},
		{"old-key-012345678", false},
		{"old-key-01234567890", false},
		{"Basic old-key-0123456789", false},
		{"OLD-KEY-0123456789", false},
		{"Bearer old-key-0123456789 new-key-abcdefghij", false},
	}
	for _, tc := range tests {
		if got := keys.Check(tc.in); got != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}

	for _, empty := range []*APIKeys{nil, NewAPIKeys(nil), NewAPIKeys([]string{"", " "})} {
		if !empty.Empty() {
			t.Errorf("%v: not Empty", empty)
		}
		for _, in := range []string{"", "Bearer ", "anything"} {
			if empty.Check(in) {
				t.Errorf("empty set accepted %q", in)
			}
		}
	}
}

func TestAPIKeysCheckDoesNotAllocate(t *testing.T) {
	keys := NewAPIKeys([]string{"k1-0123456789", "k2-0123456789"})
	if n := testing.AllocsPerRun(100, func() { keys.Check("Bearer k2-0123456789") }); n != 0 {
		t.Fatalf("Check allocates %v times", n)
	}
}
