package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testutil"
)

// Go functions in place of HTTP: the same calls, policies and ordered
// delivery, no URL and no secret.
func TestFuncsBackend(t *testing.T) {
	var mu sync.Mutex
	var got []uint64
	fail := true
	h, err := New(Config{
		Backend: Funcs{
			OnJoin: func(_ context.Context, req *JoinRequest) (*JoinResult, error) {
				return &JoinResult{Allow: req.User != "bob", Reason: "no bob"}, nil
			},
			OnPublish: func(context.Context, *PublishRequest) (*PublishResult, error) {
				return nil, errors.New("moderation service down")
			},
			OnPublished: func(_ context.Context, ev *PublishedEvent) error {
				mu.Lock()
				defer mu.Unlock()
				if fail {
					fail = false
					return errors.New("once")
				}
				got = append(got, ev.Seq)
				return nil
			},
		},
		Default:  Namespace{Hooks: []Name{Join, Publish, Published}, PublishPolicy: PolicyAllow},
		RetryMin: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	if !h.On(Join, "r") || h.On(Occupied, "r") || h.On(Connect, "") {
		t.Fatal("hooks on: want join, publish and published only")
	}
	if res, err := h.Connect(ctx, &ConnectRequest{}); res != nil || err != nil {
		t.Fatalf("connect without OnConnect: %+v %v, want no answer", res, err)
	}
	if res, err := h.Join(ctx, &JoinRequest{Room: "r", User: "bob"}); err != nil || res.Allow || res.Reason != "no bob" {
		t.Fatalf("join: %+v %v", res, err)
	}
	if res, err := h.Publish(ctx, &PublishRequest{Room: "r", Data: json.RawMessage(`1`)}); err != nil || !res.Allow {
		t.Fatalf("publish under allow: %+v %v", res, err)
	}
	// A function that answers nothing has failed: the join policy (deny)
	// refuses.
	h2, err := New(Config{Backend: Funcs{OnJoin: func(context.Context, *JoinRequest) (*JoinResult, error) { return nil, nil }},
		Default: Namespace{Hooks: []Name{Join}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(ctx)
	if _, err := h2.Join(ctx, &JoinRequest{Room: "r"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("join answered nil: %v, want ErrFailed", err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		h.Deliver(Event{Published: &PublishedEvent{Room: "r", Epoch: "e", Seq: seq}})
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(got) != "[1 2 3]" {
			return fmt.Errorf("delivered %v", got)
		}
		return nil
	})
}
