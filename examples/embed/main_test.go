package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roomd/roomd"
	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/internal/testutil"
	"github.com/roomd/roomd/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestExample runs the program on a loopback port: its join hook keeps a
// staff room, its publish hook refuses an empty message and masks a word,
// its published hook stores the message, which its own route lists; on
// its context's end the client gets bye shutdown and run returns.
func TestExample(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()

	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	c, _, err := client.Dial(tctx, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(tctx, "", nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		frame client.M
		want  string
		skip  []string
	}{
		{client.M{"t": "join", "id": 1, "r": "chat:staff-room"}, protocol.TypeErr, nil},
		{client.M{"t": "join", "id": 2, "r": "chat:lobby"}, protocol.TypeJoined, nil},
		{client.M{"t": "pub", "id": 3, "r": "chat:lobby", "d": map[string]any{"text": " "}}, protocol.TypeErr, []string{protocol.TypePres}},
		{client.M{"t": "pub", "id": 4, "r": "chat:lobby", "d": map[string]any{"text": "darn it", "name": "ann"}}, protocol.TypeMsg, []string{protocol.TypePres}},
	}
	for _, s := range steps {
		if err := c.Send(s.frame); err != nil {
			t.Fatal(err)
		}
		f, err := c.Expect(tctx, s.want, s.skip...)
		if err != nil {
			t.Fatalf("%v: %v", s.frame, err)
		}
		if s.want == protocol.TypeErr && f.Code != protocol.CodeDenied {
			t.Fatalf("%v: err %d %s, want denied", s.frame, f.Code, f.Msg)
		}
		if s.want == protocol.TypeMsg {
			if v, err := client.Value(f.D); err != nil || fmt.Sprint(v) != "map[name:ann text:**** it]" {
				t.Fatalf("message %v (%v), want the masked text", v, err)
			}
		}
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		resp, err := http.Get(base + "/app/messages?room=chat:lobby")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var evs []roomd.PublishedEvent
		if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
			return err
		}
		var m message
		if len(evs) != 1 || evs[0].Seq != 1 || json.Unmarshal(evs[0].Data, &m) != nil || m != (message{Text: "**** it", Name: "ann"}) {
			return fmt.Errorf("stored %+v", evs)
		}
		return nil
	})
	http.DefaultClient.CloseIdleConnections()

	cancel()
	f, err := c.Expect(tctx, protocol.TypeBye, protocol.TypeMsg, protocol.TypePres, protocol.TypeOK)
	if err != nil || f.Code != protocol.CodeShutdown {
		t.Fatalf("on stop: %v %v, want bye shutdown", f, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
