package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// BenchmarkFanout publishes 100-byte messages into one room with subs
// WebSocket subscribers on real loopback sockets; a message is done when
// every subscriber has read it. It reports ns per delivery, which includes
// the subscribers' own reading (same process, same cores).
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) { benchFanout(b, subs) })
	}
}

func benchFanout(b *testing.B, subs int) {
	ts := newTestServer(b, func(c *Config, _ *room.Config) { c.QueueMaxBytes = 16 << 20 })
	var received atomic.Int64 // msg frames read, all subscribers together
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	var conns []*client.Conn
	defer func() {
		cancel()
		for _, c := range conns {
			_ = c.Close() // wakes its reader
		}
		wg.Wait()
	}()
	for i := 0; i < subs; i++ {
		c := ts.connect(b)
		conns = append(conns, c)
		join(b, c, 1, "bench:fanout", nil)
		ws := c.WS()
		_ = ws.SetReadDeadline(time.Time{}) // Hello left one set
		wg.Add(1)
		go func() {
			defer wg.Done()
			var split [][]byte
			for ctx.Err() == nil {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				split, _ = protocol.Split(split[:0], msg, 0)
				received.Add(int64(len(split)))
			}
		}()
	}
	// Presence deltas of later joiners reached earlier ones: count from
	// here, once they have drained.
	time.Sleep(200 * time.Millisecond)
	base := received.Load()
	data := protocol.MustEncode(strings.Repeat("x", 97)) // 100 bytes encoded
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ts.Router().Publish(context.Background(), room.PublishRequest{Room: "bench:fanout", Data: data, FromAPI: true}); err != nil {
			b.Fatal(err)
		}
		// Keep at most 256 messages in flight per subscriber.
		for int64(i+1-256)*int64(subs) > received.Load()-base {
			time.Sleep(50 * time.Microsecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for received.Load()-base < int64(b.N)*int64(subs) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d deliveries arrived", received.Load()-base, b.N*subs)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
}
