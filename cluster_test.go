package roomd

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
)

const clusterYAML = `cluster:
  bind: 127.0.0.1:0
  fast: true
  label: roomd-embed-test
  secret: roomd-embed-test-cluster-secret-0123456789
`

// TestTwoEmbeddedNodes runs two embedded nodes, each in its own app, as a
// cluster: they list each other as members, a message published on one
// reaches a member of its room on the other, and the room's owner calls
// the published hook of its app.
func TestTwoEmbeddedNodes(t *testing.T) {
	recA, recB := &recorder{}, &recorder{}
	a := startApp(t, Config{Settings: settings(t, clusterYAML+"node_name: node-a\n"), Hooks: recA.hooks()})
	b := startApp(t, Config{Settings: settings(t, clusterYAML+"  join: ["+a.node.GossipAddr()+"]\nnode_name: node-b\n"), Hooks: recB.hooks()})
	testutil.CheckFor(t, 15*time.Second, func() error {
		for _, n := range []*Node{a.node, b.node} {
			if m := n.Members(); !slices.Equal(m, []string{"node-a", "node-b"}) {
				return fmt.Errorf("%s: members %v", n.Name(), m)
			}
			if err := n.Ready(); err != nil {
				return fmt.Errorf("%s: %w", n.Name(), err)
			}
		}
		return nil
	})

	cb := b.dial(t)
	send(t, cb, client.M{"t": "join", "id": 1, "r": "chat:x"})
	expect(t, cb, protocol.TypeJoined, protocol.TypePres)
	ca := a.dial(t)
	send(t, ca, client.M{"t": "join", "id": 1, "r": "chat:x"})
	expect(t, ca, protocol.TypeJoined, protocol.TypePres)
	send(t, ca, client.M{"t": "pub", "id": 2, "r": "chat:x", "d": "shout"})
	m := expect(t, cb, protocol.TypeMsg, protocol.TypePres)
	if v, err := client.Value(m.D); err != nil || v != "SHOUT" {
		t.Fatalf("message on the other node %v (%v), want the publish hook's replacement", v, err)
	}
	testutil.CheckFor(t, 10*time.Second, func() error {
		got := append(recA.publishedData(), recB.publishedData()...)
		if !slices.Contains(got, `chat:x 1 "SHOUT"`) {
			return fmt.Errorf("published %v", got)
		}
		return nil
	})
}
