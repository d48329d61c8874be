package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestPermissionMatrix(t *testing.T) {
	id := &Identity{User: "alice", Grants: []Grant{
		{"board:42", PermState},
		{"board:4*", PermJoin | PermObserve},
		{"chat:*", PermJoin | PermPub},
		{"chat:lobby", PermPres},
		{"*:public", PermObserve},
	}}
	perms := []Perm{PermJoin, PermPub, PermPres, PermState, PermObserve}
	// want[room] is every permission alice has there.
	want := map[string]Perm{
		"board:42":    PermState | PermJoin | PermObserve, // exact + prefix wildcard united
		"board:4":     PermJoin | PermObserve,             // '*' matches nothing
		"board:43":    PermJoin | PermObserve,
		"board:52":    0,
		"chat:lobby":  PermJoin | PermPub | PermPres,
		"chat:other":  PermJoin | PermPub,
		"chat:public": PermJoin | PermPub | PermObserve,
		"news:public": PermObserve,
		"chat":        0,
		"lobby":       0,
	}
	for room, have := range want {
		if got := id.Perms(room); got != have {
			t.Errorf("Perms(%q) = %v, want %v", room, got, have)
		}
		for _, p := range perms {
			if got := id.Can(room, p); got != (have&p != 0) {
				t.Errorf("Can(%q, %v) = %v, want %v", room, p, got, !got)
			}
		}
		// Combined permissions need every bit.
		if got := id.Can(room, PermJoin|PermPub); got != (have&(PermJoin|PermPub) == PermJoin|PermPub) {
			t.Errorf("Can(%q, join|pub) = %v", room, got)
		}
		if !id.Can(room, 0) {
			t.Errorf("Can(%q, 0) = false", room)
		}
	}
	if !id.Can("board:42", PermState|PermObserve) {
		t.Error("union across grants not applied")
	}

	var none *Identity
	if none.Can("chat:lobby", PermJoin) || none.Perms("chat:lobby") != 0 {
		t.Error("nil identity has permissions")
	}
	if (&Identity{User: "bob"}).Can("chat:lobby", PermJoin) {
		t.Error("identity without grants has permissions")
	}
	all := &Identity{Grants: []Grant{{"*", PermAll}}}
	for _, p := range perms {
		if !all.Can("anything:at.all", p) {
			t.Errorf("'*' grant lacks %v", p)
		}
	}
}

func TestIdentityExpired(t *testing.T) {
	now := time.Now()
	tests := []struct {
		id   *Identity
		want bool
	}{
		{nil, false},
		{&Identity{}, false},
		{&Identity{Expires: now.Add(time.Second)}, false},
		{&Identity{Expires: now}, true},
		{&Identity{Expires: now.Add(-time.Second)}, true},
	}
	for i, tc := range tests {
		if got := tc.id.Expired(now); got != tc.want {
			t.Errorf("%d: Expired = %v, want %v", i, got, tc.want)
		}
	}
}

func TestCanDoesNotAllocate(t *testing.T) {
	id := &Identity{Grants: []Grant{{"board:*", PermJoin}, {"chat:*", PermJoin | PermPub}, {"*:x*y", PermObserve}}}
	if n := testing.AllocsPerRun(100, func() {
		id.Can("chat:lobby", PermPub)
		id.Can("zzz:xaaay", PermObserve)
		id.Perms("board:1")
	}); n != 0 {
		t.Fatalf("Can allocates %v times", n)
	}
}

func BenchmarkCan(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		grants := make([]Grant, 0, n)
		for i := range n - 1 {
			grants = append(grants, Grant{Pattern: fmt.Sprintf("ns%d:*", i), Perms: PermJoin | PermPub})
		}
		grants = append(grants, Grant{Pattern: "chat:*", Perms: PermJoin | PermPub})
		id := &Identity{User: "alice", Grants: grants}
		b.Run(fmt.Sprintf("grants=%d/hit", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !id.Can("chat:lobby", PermPub) {
					b.Fatal("denied")
				}
			}
		})
		b.Run(fmt.Sprintf("grants=%d/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if id.Can("board:42", PermPub) {
					b.Fatal("allowed")
				}
			}
		})
	}
	dev := &Identity{Dev: true}
	b.Run("dev", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dev.Can("chat:lobby", PermPub)
		}
	})
}
