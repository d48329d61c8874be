package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/cluster"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/server/admission"
)

// costlyRouter makes each publish to a room named "hot..." take cost, as
// a room whose fan-out the node cannot keep up with does.
type costlyRouter struct {
	cluster.Router
	cost time.Duration
}

func (c *costlyRouter) wrap(r cluster.Router) cluster.Router { c.Router = r; return c }

func (c *costlyRouter) Publish(ctx context.Context, req room.PublishRequest) (uint64, error) {
	if strings.HasPrefix(req.Room, "hot") {
		time.Sleep(c.cost)
	}
	return c.Router.Publish(ctx, req)
}

// pubAnswers reads until n answers (ok or err) to pubs came, and counts
// them; other frames are skipped.
func pubAnswers(t *testing.T, c *client.Conn, n int) (oks, overloaded int) {
	t.Helper()
	ctx := testCtx(t)
	for oks+overloaded < n {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d ok and %d overloaded of %d: %v", oks, overloaded, n, err)
		}
		switch f.T {
		case protocol.TypeOK:
			oks++
		case protocol.TypeErr:
			if f.Code != protocol.CodeOverloaded {
				t.Fatalf("err %d (%s), want %d overloaded", f.Code, f.Msg, protocol.CodeOverloaded)
			}
			overloaded++
		}
	}
	return oks, overloaded
}

// admissionServer runs a server with admission's default target, whose
// publishes to "hot" cost 5 ms each, and connects a member of "hot".
func admissionServer(t *testing.T) (*testServer, *client.Conn) {
	t.Helper()
	ts := newTestServer(t, func(c *Config, _ *room.Config) {
		c.Router = &costlyRouter{cost: 5 * time.Millisecond}
		c.FrameRate, c.FrameBurst = 1e6, 1e6
		c.AdmissionTarget = admission.DefaultTarget
	})
	flood := ts.connect(t)
	join(t, flood, 1, "hot", nil)
	return ts, flood
}

// sendFlood sends n pubs to "hot" in one message, numbered from *id on.
func sendFlood(t *testing.T, c *client.Conn, id *uint64, n int) {
	t.Helper()
	frames := make([]any, n)
	for i := range frames {
		frames[i] = client.M{"t": "pub", "id": *id, "r": "hot", "d": "x"}
		*id++
	}
	send(t, c, frames...)
}

// TestAdmissionRefusesFloodAnswersAllKeepsQuietRoom: a publisher flooding
// a room whose publishes cost more than it offers gets err 7 overloaded
// for the excess, an answer to every pub, while a publisher in another
// room is never refused; once the flood ends, the room takes publishes
// again.
func TestAdmissionRefusesFloodAnswersAllKeepsQuietRoom(t *testing.T) {
	ts, flood := admissionServer(t)
	quiet := ts.connect(t)
	join(t, quiet, 1, "calm", nil)

	// The quiet room publishes one pub at a time while the flood lasts.
	stop := make(chan struct{})
	quietDone := make(chan error, 1)
	go func() {
		quietDone <- func() error {
			ctx := testCtx(t)
			for id := uint64(10); ; id++ {
				select {
				case <-stop:
					return nil
				default:
				}
				if err := quiet.Send(client.M{"t": "pub", "id": id, "r": "calm", "d": "hi"}); err != nil {
					return err
				}
				f, err := quiet.Expect(ctx, protocol.TypeOK, protocol.TypeMsg)
				if err != nil {
					return fmt.Errorf("quiet pub %d: %w", id, err)
				}
				if f.ID != id {
					return fmt.Errorf("ok for %d, want %d", f.ID, id)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}()

	// The flood: batches of 100 pubs, until refusals come.
	const batch = 100
	sent, oks, refused := 0, 0, 0
	id := uint64(100)
	checkFor(t, 20*time.Second, func() error {
		sendFlood(t, flood, &id, batch)
		sent += batch
		o, r := pubAnswers(t, flood, batch)
		oks, refused = oks+o, refused+r
		if refused == 0 {
			return errors.New("no pub refused yet")
		}
		return nil
	})
	close(stop)
	if err := <-quietDone; err != nil {
		t.Fatalf("the quiet room: %v", err)
	}
	if oks+refused != sent {
		t.Fatalf("%d answers to %d pubs", oks+refused, sent)
	}
	t.Logf("flood: %d pubs, %d ok, %d refused", sent, oks, refused)

	// Recovery: one pub at a time to the room is taken again.
	checkFor(t, 20*time.Second, func() error {
		for range 20 {
			send(t, flood, client.M{"t": "pub", "id": id, "r": "hot", "d": "x"})
			id++
			if o, _ := pubAnswers(t, flood, 1); o == 0 {
				return errors.New("a pub was refused")
			}
		}
		return nil
	})
}

// TestAdmissionAPIRefusal: an API publish refused by admission gets 503,
// code 7 and Retry-After.
func TestAdmissionAPIRefusal(t *testing.T) {
	ts, flood := admissionServer(t)
	id := uint64(100)
	checkFor(t, 20*time.Second, func() error {
		sendFlood(t, flood, &id, 100)
		// The API asks while the flood's pubs wait.
		resp, err := http.Post(ts.URL+"/v1/rooms/hot/messages", "application/json", strings.NewReader(`{"data":"x"}`))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		pubAnswers(t, flood, 100)
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "1" {
			t.Fatalf("503 with Retry-After %q, want 1", ra)
		}
		return nil
	})
}
