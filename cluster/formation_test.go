package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster/membership"
)

func fmNode(name string, inc int64, id string) membership.Node {
	return membership.Node{Name: name, Alive: true, Meta: membership.NodeMeta{Incarnation: inc, State: membership.StateServing, ClusterID: id}}
}

// Who may form, and how: the rules of formation.go, one case each.
func TestDecideFormation(t *testing.T) {
	a, b, c := fmNode("a", 1, ""), fmNode("b", 2, ""), fmNode("c", 3, "")
	abc := formClusterID([]membership.Node{a, b, c})
	other := formClusterID([]membership.Node{fmNode("x", 9, "")})
	now := time.Unix(1000, 0)
	leaving := fmNode("c", 3, "")
	leaving.Meta.State = membership.StateLeaving
	dead := fmNode("c", 3, "")
	dead.Alive = false
	for _, tc := range []struct {
		name      string
		expect    int
		seeds     bool
		nodes     []membership.Node
		seenAt    time.Time // first saw a formed member
		ok        bool
		id        string
		members   []string
		boot      bool
		seen      int
		sawFormed bool
	}{
		{name: "neither seeds nor expect: alone at once", nodes: []membership.Node{a}, ok: true, id: formClusterID([]membership.Node{a}), members: []string{"a"}, boot: true, seen: 1},
		{name: "expect 3, 2 seen", expect: 3, nodes: []membership.Node{a, b}, seen: 2},
		{name: "expect 3, a leaving and a dead node do not count", expect: 3, nodes: []membership.Node{a, b, leaving}, seen: 2},
		{name: "expect 3, dead", expect: 3, nodes: []membership.Node{a, b, dead}, seen: 2},
		{name: "expect 3, 3 seen: bootstrap", expect: 3, seeds: true, nodes: []membership.Node{c, a, b}, ok: true, id: abc, members: []string{"a", "b", "c"}, boot: true, seen: 3},
		{name: "seeds, no expect, 3 fresh nodes: never bootstrap", seeds: true, nodes: []membership.Node{a, b, c}, seen: 3},
		{name: "seeds, no expect, a formed member: join it", seeds: true, nodes: []membership.Node{a, fmNode("x", 9, other)}, ok: true, id: other, members: []string{"a", "x"}, seen: 2, sawFormed: true},
		{name: "the cluster with the most members is joined", seeds: true,
			nodes: []membership.Node{a, fmNode("x", 9, other), fmNode("y", 9, "b-id"), fmNode("z", 9, "b-id")},
			ok:    true, id: "b-id", members: []string{"a", "y", "z"}, seen: 4, sawFormed: true},
		{name: "expect 3, a member bootstrapped with this one: the same bootstrap", expect: 3,
			nodes: []membership.Node{a, fmNode("b", 2, abc), c}, ok: true, id: abc, members: []string{"a", "b", "c"}, boot: true, seen: 3, sawFormed: true},
		{name: "expect 3, a formed member and too few to tell: wait", expect: 3,
			nodes: []membership.Node{a, fmNode("b", 2, abc)}, seen: 2, sawFormed: true},
		{name: "expect 3, a formed member and too few, for formSettle: join", expect: 3, seenAt: now.Add(-formSettle),
			nodes: []membership.Node{a, fmNode("b", 2, abc)}, ok: true, id: abc, members: []string{"a", "b"}, seen: 2, sawFormed: true},
		{name: "expect 3, an existing cluster (this node restarted): join", expect: 3,
			nodes: []membership.Node{fmNode("a", 7, ""), fmNode("b", 2, abc), fmNode("c", 3, abc)}, ok: true, id: abc, members: []string{"a", "b", "c"}, seen: 3, sawFormed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decideFormation("a", tc.expect, tc.seeds, tc.nodes, now, tc.seenAt)
			if d.ok != tc.ok || d.id != tc.id || !slices.Equal(d.members, tc.members) || d.bootstrapped != tc.boot || d.seen != tc.seen || d.formedSeen != tc.sawFormed {
				t.Errorf("got %+v\nwant ok %v id %q members %v bootstrapped %v seen %d formedSeen %v", d, tc.ok, tc.id, tc.members, tc.boot, tc.seen, tc.sawFormed)
			}
		})
	}
}

// The ID is a function of the set's names and incarnations, in any order.
func TestFormClusterID(t *testing.T) {
	a, b := fmNode("a", 1, ""), fmNode("b", 2, "")
	if formClusterID([]membership.Node{a, b}) != formClusterID([]membership.Node{b, a}) {
		t.Error("the ID depends on the order of the set")
	}
	if formClusterID([]membership.Node{a, b}) == formClusterID([]membership.Node{a, fmNode("b", 3, "")}) {
		t.Error("a new incarnation gives the same ID")
	}
	if formClusterID([]membership.Node{fmNode("ab", 1, "")}) == formClusterID([]membership.Node{fmNode("a", 1, ""), fmNode("b", 1, "")}) {
		t.Error("names run together")
	}
	if id := formClusterID([]membership.Node{a}); len(id) != 24 {
		t.Errorf("ID %q: want 24 hex digits", id)
	}
}
