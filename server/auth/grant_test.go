package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGrant(t *testing.T) {
	tests := []struct {
		in   string
		want Grant
		err  bool
	}{
		{"chat:*=join,pub,pres", Grant{"chat:*", PermJoin | PermPub | PermPres}, false},
		{"board:42=state", Grant{"board:42", PermState}, false},
		{"*=join,pub,pres,state,observe", Grant{"*", PermAll}, false},
		{" board:4* = observe ", Grant{"board:4*", PermObserve}, false},
		{"a.b_c-d@e:f=join", Grant{"a.b_c-d@e:f", PermJoin}, false},
		{"chat:*", Grant{}, true},            // no '='
		{"chat:*=", Grant{}, true},           // no permission
		{"=join", Grant{}, true},             // no pattern
		{"chat/*=join", Grant{}, true},       // bad character
		{"chat *=join", Grant{}, true},       // space inside
		{"chat:*=join,admin", Grant{}, true}, // unknown permission
		{"chat:é=join", Grant{}, true},       // non-ASCII
		{strings.Repeat("a", 129) + "=join", Grant{}, true},
	}
	for _, tc := range tests {
		got, err := ParseGrant(tc.in)
		if tc.err {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseGrant(%q) error = %v, want ErrMalformed", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseGrant(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := ParseGrant(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
		}
	}
	if _, err := ParseGrant(strings.Repeat("a", 128) + "=join"); err != nil {
		t.Errorf("128-byte pattern: %v", err)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"chat:lobby", "chat:lobby", true},
		{"chat:lobby", "chat:lobby2", false},
		{"chat:lobby", "chat:lobb", false},
		{"chat:*", "chat:lobby", true},
		{"chat:*", "chat:", true},
		{"chat:*", "chat", false},
		{"chat:*", "chatx:a", false},
		{"chat:*", "board:chat:a", false},
		{"*", "anything", true},
		{"*", "", true},
		{"board:4*", "board:4", true},
		{"board:4*", "board:42", true},
		{"board:4*", "board:52", false},
		{"*:lobby", "chat:lobby", true},
		{"*:lobby", "chat:lobby:x", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abcbc", true},
		{"a*b*c", "acb", false},
		{"a**c", "ac", true},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true},
		{"team@x.y:*", "team@x.y:room-1_a", true},
	}
	for _, tc := range tests {
		if got := matchPattern(tc.pattern, tc.name); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
		if got := (Grant{Pattern: tc.pattern}).Matches(tc.name); got != tc.want {
			t.Errorf("Grant.Matches(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// refMatch is the reference matcher, by dynamic programming over bytes:
// m[i][j] says whether pattern[:i] matches name[:j].
func refMatch(pattern, name string) bool {
	m := make([][]bool, len(pattern)+1)
	for i := range m {
		m[i] = make([]bool, len(name)+1)
	}
	m[0][0] = true
	for i := 1; i <= len(pattern); i++ {
		for j := 0; j <= len(name); j++ {
			if pattern[i-1] == '*' {
				m[i][j] = m[i-1][j] || (j > 0 && m[i][j-1])
			} else {
				m[i][j] = j > 0 && m[i-1][j-1] && pattern[i-1] == name[j-1]
			}
		}
	}
	return m[len(pattern)][len(name)]
}

func FuzzParseGrant(f *testing.F) {
	for _, s := range []string{"chat:*=join,pub,pres", "*=observe", "board:4*=state", "=", "a=b", "x=join,,pub", "**=join"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGrant(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseGrant(%q): error %v does not wrap ErrMalformed", s, err)
			}
			return
		}
		if ValidPattern(g.Pattern) != nil || g.Perms == 0 || g.Perms&^PermAll != 0 {
			t.Fatalf("ParseGrant(%q) = %+v: invalid grant accepted", s, g)
		}
		back, err := ParseGrant(g.String())
		if err != nil || back != g {
			t.Fatalf("round trip of %+v: %+v, %v", g, back, err)
		}
	})
}

func FuzzMatchPattern(f *testing.F) {
	seeds := [][2]string{{"chat:*", "chat:lobby"}, {"*", ""}, {"a*b*c", "aXbYc"}, {"board:4*", "board:52"}, {"*a*a*b", "aaaaaaab"}, {"x", "x"}}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 2*MaxPatternLen || len(name) > 2*MaxPatternLen {
			return
		}
		got := matchPattern(pattern, name)
		if want := refMatch(pattern, name); got != want {
			t.Fatalf("match(%q, %q) = %v, reference says %v", pattern, name, got, want)
		}
		if !strings.Contains(pattern, "*") && got != (pattern == name) {
			t.Fatalf("match(%q, %q) = %v without wildcard", pattern, name, got)
		}
	})
}
