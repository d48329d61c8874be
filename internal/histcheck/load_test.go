package histcheck

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roomd/roomd/internal/testnode"
	"github.com/roomd/roomd/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoadOneNode runs the workload against one node, where nothing may go
// wrong: two publishers, three subscribers, two rooms; the subscribers also
// reconnect mid-way. The check must come out clean, with every publish
// acknowledged and delivered to every subscriber.
func TestLoadOneNode(t *testing.T) {
	url, _ := testnode.Start(t, "solo", func(c *server.Config) { c.FrameRate = 10000 })
	l, err := Start(LoadConfig{URLs: []string{url, url}, Rooms: []string{"hc:a", "hc:b"}, Publishers: 2, Subscribers: 3, Rate: 200, MaxMessages: 150})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	if err := l.WaitAcked(100, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Subscribers() {
		s.Drop()
	}
	if err := l.WaitAcked(300, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	sum, err := l.Finish(15 * time.Second)
	t.Logf("\n%s", sum.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	tot := sum.Total
	if tot.Published != 300 || tot.Acked != 300 || tot.Delivered < 3*300 || tot.Subscribers != 6 || tot.Histories != 4 {
		t.Errorf("counts: %s", tot.String())
	}
	for _, r := range sum.Rooms {
		if r.Acked != 150 {
			t.Errorf("%s", r.String())
		}
	}
}
