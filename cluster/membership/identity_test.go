package membership

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/roomd/roomd/internal/testutil"
)

// A node that carries a cluster ID refuses alive messages and merges of
// nodes that carry another one, once a Warn per node and ID, and records
// what such a node claims (so that placement leaves it out even when an
// earlier message of it was let in); a node without an ID, or with the
// same, is let in, and a node that has no ID yet lets everyone in.
func TestMembershipRefusesForeignClusterID(t *testing.T) {
	var logs testutil.SyncBuffer
	a := startNode(t, "a", func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	b := startNode(t, "b", func(c *Config) { c.Join = []string{a.GossipAddr()} })
	waitFor(t, 3*time.Second, "b did not join", allOf([]*Membership{a, b}, servingIs("a", "b")))
	node := func(name, id string) *memberlist.Node {
		b, err := encodeMeta(NodeMeta{State: StateServing, ClusterID: id})
		if err != nil {
			t.Fatal(err)
		}
		return &memberlist.Node{Name: name, Meta: b}
	}
	d := delegate{a}

	// Without an ID of its own, a lets everyone in.
	if err := d.NotifyAlive(node("b", "other")); err != nil {
		t.Errorf("a without an ID refused b: %v", err)
	}
	if err := a.SetClusterID("ours"); err != nil {
		t.Fatal(err)
	}
	if a.ClusterID() != "ours" || a.Self().Meta.ClusterID != "ours" {
		t.Fatalf("a carries %q", a.ClusterID())
	}
	for _, n := range []*memberlist.Node{node("b", ""), node("b", "ours"), node("a", "other")} {
		if err := d.NotifyAlive(n); err != nil {
			t.Errorf("%s with ID %q refused: %v", n.Name, metaID(n), err)
		}
	}
	for range 3 {
		if err := d.NotifyAlive(node("b", "other")); !errors.Is(err, ErrForeignCluster) {
			t.Errorf("b of another cluster: %v, want ErrForeignCluster", err)
		}
	}
	if err := d.NotifyMerge([]*memberlist.Node{node("c", ""), node("x", "other")}); !errors.Is(err, ErrForeignCluster) {
		t.Errorf("a merge with a node of another cluster: %v", err)
	}
	if err := d.NotifyMerge([]*memberlist.Node{node("c", ""), node("b", "ours")}); err != nil {
		t.Errorf("a merge with nodes of this cluster: %v", err)
	}
	if n, _ := a.Node("b"); n.Meta.ClusterID != "other" {
		t.Errorf("a records b's cluster ID as %q, want what b claims", n.Meta.ClusterID)
	}
	if got := strings.Count(logs.String(), "refusing a node of another cluster"); got != 2 {
		t.Errorf("%d warnings for two refused nodes, want one each:\n%s", got, logs.String())
	}
}

func metaID(n *memberlist.Node) string {
	m, _ := decodeMeta(n.Meta)
	return m.ClusterID
}
