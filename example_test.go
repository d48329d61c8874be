package roomd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/roomd/roomd"
)

// A program serves a node under /rt/ of its own mux, with a publish hook
// that rewrites payloads and a published hook that stores them (here, on a
// channel).
func Example() {
	settings, err := roomd.ParseSettings([]byte(`
api_keys: [example-api-key]
drain_delay: -1s
rooms:
  history_size: 100
`))
	if err != nil {
		log.Fatal(err)
	}
	stored := make(chan *roomd.PublishedEvent, 1)
	node, err := roomd.New(roomd.Config{
		Settings: settings,
		Logger:   slog.New(slog.DiscardHandler),
		Hooks: &roomd.Hooks{
			Publish: func(_ context.Context, req *roomd.PublishRequest) (*roomd.PublishResult, error) {
				var s string
				if json.Unmarshal(req.Data, &s) == nil && strings.Contains(s, "spam") {
					return &roomd.PublishResult{Allow: false, Reason: "no spam"}, nil
				}
				return &roomd.PublishResult{Allow: true, Data: json.RawMessage(strings.ToUpper(string(req.Data)))}, nil
			},
			Published: func(_ context.Context, ev *roomd.PublishedEvent) error {
				stored <- ev
				return nil // acknowledged: an error would have it retried
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/rt/", http.StripPrefix("/rt", node))
	srv := httptest.NewServer(mux) // the program's own server
	defer srv.Close()

	for _, body := range []string{`{"data":"buy spam"}`, `{"data":"hello"}`} {
		req, _ := http.NewRequest("POST", srv.URL+"/rt/v1/rooms/chat:lobby/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer example-api-key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(body, resp.Status)
	}
	ev := <-stored
	fmt.Println("stored:", ev.Room, ev.Seq, string(ev.Data))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"data":"buy spam"} 403 Forbidden
	// {"data":"hello"} 200 OK
	// stored: chat:lobby 1 "HELLO"
}
