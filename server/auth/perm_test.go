package auth

import (
	"errors"
	"testing"
)

func TestParsePerms(t *testing.T) {
	tests := []struct {
		in   string
		want Perm
		err  bool
	}{
		{"", 0, false},
		{" , ", 0, false},
		{"join", PermJoin, false},
		{"join,pub", PermJoin | PermPub, false},
		{" pub , join ,pub", PermJoin | PermPub, false},
		{"join,pub,pres,state,observe", PermAll, false},
		{"observe", PermObserve, false},
		{"admin", 0, true},
		{"join,Pub", 0, true},
		{"*", 0, true},
		{"join;pub", 0, true},
	}
	for _, tc := range tests {
		got, err := ParsePerms(tc.in)
		if tc.err {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParsePerms(%q) error = %v, want ErrMalformed", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePerms(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPermString(t *testing.T) {
	tests := []struct {
		p    Perm
		want string
	}{
		{0, ""},
		{PermJoin, "join"},
		{PermObserve | PermJoin, "join,observe"},
		{PermAll, "join,pub,pres,state,observe"},
		{PermPub | 0x80, "pub,0x80"},
		{0x40, "0x40"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Perm(%d).String() = %q, want %q", uint8(tc.p), got, tc.want)
		}
	}
	for p := Perm(0); p <= PermAll; p++ {
		back, err := ParsePerms(p.String())
		if err != nil || back != p {
			t.Errorf("round trip of %d: %v, %v", p, back, err)
		}
		if got, _ := ParsePerms(joinNames(p.Names())); got != p {
			t.Errorf("Names of %d: %v", p, p.Names())
		}
	}
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ","
		}
		s += n
	}
	return s
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrMissing, "missing"},
		{ErrMalformed, "malformed"},
		{ErrExpired, "expired"},
		{ErrSignature, "signature"},
		{ErrAlgorithm, "algorithm"},
		{ErrClaims, "claims"},
		{errors.New("boom"), "other"},
	}
	for _, tc := range tests {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if tc.err != nil && tc.want != "other" {
			if got := Reason(errors.Join(errors.New("ctx"), tc.err)); got != tc.want {
				t.Errorf("Reason(wrapped %v) = %q, want %q", tc.err, got, tc.want)
			}
		}
	}
}
