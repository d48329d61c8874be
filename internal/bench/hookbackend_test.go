package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/roomd/roomd/hooks"
)

// The loopback hook backend counts what roomd's own hooks client sends it:
// distinct published events, a redelivered copy, a refused signature.
func TestHookBackend(t *testing.T) {
	b, err := StartHookBackend("127.0.0.1:0", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	good := hooks.NewHTTPBackend([]byte("k"), nil, "", func(string) string { return b.URL() })
	bad := hooks.NewHTTPBackend([]byte("other"), nil, "", func(string) string { return b.URL() })
	if res, err := good.Publish(ctx, &hooks.PublishRequest{Room: "r", Data: json.RawMessage(`1`)}); err != nil || !res.Allow {
		t.Fatalf("publish: %+v %v", res, err)
	}
	now := time.Now().UnixMilli()
	for _, seq := range []uint64{1, 2, 2, 3} {
		if err := good.Published(ctx, &hooks.PublishedEvent{Room: "r", Epoch: "e", Seq: seq, TS: now, Data: json.RawMessage(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bad.Published(ctx, &hooks.PublishedEvent{Room: "r", Seq: 4}); err == nil {
		t.Fatal("a request with a bad signature was acknowledged")
	}
	s := b.Stats()
	if s.Calls["publish"] != 1 || s.Calls["published"] != 4 || s.Published != 3 || s.Duplicates != 1 || s.OutOfOrder != 0 ||
		s.BadSignatures != 1 || s.Delivery == nil || s.Delivery.Count != 4 {
		t.Fatalf("stats %+v", s)
	}
}
