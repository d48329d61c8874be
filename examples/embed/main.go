// Command embed is a Go program that runs roomd inside itself: roomd's
// routes (WebSocket, SSE, the HTTP API and the demo pages) share the
// program's mux with a route of its own, and the program's hooks are plain
// functions called in process: no token, no HTTP backend, no signature.
//
//	go run ./examples/embed -addr 127.0.0.1:8080
//
// Then open http://127.0.0.1:8080/chat/ in two windows, and
// http://127.0.0.1:8080/app/messages?room=chat:lobby to see what the
// program stored. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomd/roomd"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, slog.Default()); err != nil {
		log.Fatal(err)
	}
}

// run serves the app on ln until ctx ends, then stops roomd gracefully and
// the app's server after it.
func run(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	settings, err := roomd.ParseSettings([]byte("drain_delay: -1s\nrooms:\n  history_size: 50\n"))
	if err != nil {
		return err
	}
	st := newStore()
	node, err := roomd.New(roomd.Config{Settings: settings, Hooks: st.hooks(), Addr: ln.Addr(), Logger: logger})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", node) // roomd: /v1/ws, /v1/rooms/..., the demo pages
	mux.HandleFunc("GET /app/messages", st.serveMessages)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String())

	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// roomd first: its clients get bye shutdown (and reconnect elsewhere),
	// then the app's server stops.
	err = errors.Join(err, node.Close(sctx), hs.Shutdown(sctx))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// message is what the chat demo publishes.
type message struct {
	Text  string `json:"text"`
	Name  string `json:"name,omitempty"`
	Color string `json:"color,omitempty"`
}

// store keeps the last messages of each room: the program's own database.
type store struct {
	mu    sync.Mutex
	rooms map[string][]roomd.PublishedEvent
}

func newStore() *store { return &store{rooms: map[string][]roomd.PublishedEvent{}} }

// hooks are the program's hooks, on the rooms of the chat namespace.
func (s *store) hooks() *roomd.Hooks {
	return &roomd.Hooks{
		Namespaces: []string{"chat"},
		// Join keeps chat:staff-* rooms for users named staff-*.
		Join: func(_ context.Context, req *roomd.JoinRequest) (*roomd.JoinResult, error) {
			if strings.HasPrefix(req.Room, "chat:staff-") && !strings.HasPrefix(req.User, "staff-") {
				return &roomd.JoinResult{Reason: "staff only"}, nil
			}
			return &roomd.JoinResult{Allow: true}, nil
		},
		// Publish refuses empty messages and masks a word.
		Publish: func(_ context.Context, req *roomd.PublishRequest) (*roomd.PublishResult, error) {
			var m message
			if err := json.Unmarshal(req.Data, &m); err != nil || strings.TrimSpace(m.Text) == "" {
				return &roomd.PublishResult{Reason: "a message needs a text"}, nil
			}
			if !strings.Contains(strings.ToLower(m.Text), "darn") {
				return &roomd.PublishResult{Allow: true}, nil
			}
			m.Text = strings.NewReplacer("darn", "****", "Darn", "****", "DARN", "****").Replace(m.Text)
			data, err := json.Marshal(m)
			return &roomd.PublishResult{Allow: true, Data: data}, err
		},
		// Published stores what was committed, once per seq.
		Published: func(_ context.Context, ev *roomd.PublishedEvent) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			evs := s.rooms[ev.Room]
			if n := len(evs); n > 0 && evs[n-1].Epoch == ev.Epoch && evs[n-1].Seq >= ev.Seq {
				return nil // delivered again (at least once): already stored
			}
			s.rooms[ev.Room] = append(evs[max(0, len(evs)-99):], *ev)
			return nil
		},
	}
}

// serveMessages lists a room's stored messages as JSON.
func (s *store) serveMessages(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	evs := append([]roomd.PublishedEvent{}, s.rooms[r.URL.Query().Get("room")]...)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(evs)
}
