package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/client"
	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// BenchmarkInboundPub sends durable pubs with ids from one WebSocket client
// into a room it is the only member of, at most 256 unanswered, over a
// real loopback socket: the inbound path from a client's frame to its ok
// (and echo), the reader's handing over to the room's ops included.
func BenchmarkInboundPub(b *testing.B) {
	ts := newInboundServer(b)
	c := ts.connect(b)
	join(b, c, 1, "bench:in", nil)
	benchInbound(b, c, client.M{"t": "pub", "r": "bench:in", "d": "0123456789012345678901234567890123456789"}, 2, protocol.TypeOK)
}

// BenchmarkInboundRefused is BenchmarkInboundPub for frames the reader
// refuses itself (here undecodable ones; overload and rate-limit refusals
// take the same path): each gets its err, and nothing reaches a room.
func BenchmarkInboundRefused(b *testing.B) {
	ts := newInboundServer(b)
	c := ts.connect(b)
	// "r" of the wrong type
	benchInbound(b, c, client.M{"t": "pub", "r": 42, "d": "0123456789012345678901234567890123456789"}, 1, protocol.TypeErr)
}

// newInboundServer is a test server whose inbound limits never throttle
// one fast client.
func newInboundServer(b *testing.B) *testServer {
	return newTestServer(b, func(c *Config, _ *room.Config) {
		c.FrameRate, c.FrameBurst, c.ByteRate = 1e9, 1<<30, 1<<30
		c.QueueMaxBytes = 64 << 20
	})
}

// benchInbound sends frame b.N times on c, with ids from firstID, at most
// 256 unanswered, and waits until each got its answer (a frame of type
// answer).
func benchInbound(b *testing.B, c *client.Conn, frame client.M, firstID int, answer string) {
	_ = c.WS().SetReadDeadline(time.Time{})
	var answers atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := c.Next(context.Background())
			if err != nil {
				return
			}
			if f.T == answer {
				answers.Add(1)
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		frame["id"] = i + firstID
		if err := c.Send(frame); err != nil {
			b.Fatal(err)
		}
		for int64(i+1-256) > answers.Load() {
			time.Sleep(20 * time.Microsecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for answers.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d answered with %s", answers.Load(), b.N, answer)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	_ = c.Close()
	<-done
}
