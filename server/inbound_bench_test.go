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
	ts := newTestServer(b, func(c *Config, _ *room.Config) {
		c.FrameRate, c.FrameBurst, c.ByteRate = 1e9, 1<<30, 1<<30
		c.QueueMaxBytes = 64 << 20
	})
	c := ts.connect(b)
	join(b, c, 1, "bench:in", nil)
	_ = c.WS().SetReadDeadline(time.Time{})
	var oks atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := c.Next(context.Background())
			if err != nil {
				return
			}
			if f.T == protocol.TypeOK {
				oks.Add(1)
			}
		}
	}()
	frame := client.M{"t": "pub", "r": "bench:in", "d": "0123456789012345678901234567890123456789"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		frame["id"] = i + 2
		if err := c.Send(frame); err != nil {
			b.Fatal(err)
		}
		for int64(i+1-256) > oks.Load() {
			time.Sleep(20 * time.Microsecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for oks.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d oks", oks.Load(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	_ = c.Close()
	<-done
}

// BenchmarkInboundRefused is BenchmarkInboundPub for frames the reader
// refuses itself (here undecodable ones; overload and rate-limit refusals
// take the same path): each gets its err, and nothing reaches a room.
func BenchmarkInboundRefused(b *testing.B) {
	ts := newTestServer(b, func(c *Config, _ *room.Config) {
		c.FrameRate, c.FrameBurst, c.ByteRate = 1e9, 1<<30, 1<<30
		c.QueueMaxBytes = 64 << 20
	})
	c := ts.connect(b)
	_ = c.WS().SetReadDeadline(time.Time{})
	var errs atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := c.Next(context.Background())
			if err != nil {
				return
			}
			if f.T == protocol.TypeErr {
				errs.Add(1)
			}
		}
	}()
	frame := client.M{"t": "pub", "r": 42, "d": "0123456789012345678901234567890123456789"} // "r" of the wrong type
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		frame["id"] = i + 1
		if err := c.Send(frame); err != nil {
			b.Fatal(err)
		}
		for int64(i+1-256) > errs.Load() {
			time.Sleep(20 * time.Microsecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for errs.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d errs", errs.Load(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	_ = c.Close()
	<-done
}
