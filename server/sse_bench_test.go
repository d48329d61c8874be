package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomd/roomd/protocol"
	"github.com/roomd/roomd/room"
)

// BenchmarkSSEFanout publishes 100-byte messages into one room observed by
// n raw SSE streams read on loopback sockets in the same process (their
// reading counted too), one message at a time: each is read by every
// observer before the next is published, so every write carries one event,
// as at 50 msg/s. An op is one message's whole fan-out; ns/delivery is
// that over the observers.
func BenchmarkSSEFanout(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("observers=%d", n), func(b *testing.B) { benchSSEFanout(b, n) })
	}
}

func benchSSEFanout(b *testing.B, n int) {
	ts := newTestServer(b, nil)
	const name = "bench:ssefan"
	var received atomic.Int64 // message events read, all observers together
	var wg sync.WaitGroup
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close() // ends its reader
		}
		wg.Wait()
	}()
	for range n {
		c, rd := openRawSSE(b, ts.URL, "/v1/rooms/"+name+"/events", "")
		conns = append(conns, c)
		_ = c.SetReadDeadline(time.Time{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				line, err := rd.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.Equal(line, []byte("event: message\n")) {
					received.Add(1)
				}
			}
		}()
	}
	data := protocol.MustEncode(strings.Repeat("x", 97)) // 100 bytes encoded
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := ts.Router().Publish(context.Background(), room.PublishRequest{Room: name, Data: data, FromAPI: true}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for received.Load() < int64(i+1)*int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d deliveries arrived", received.Load(), (i+1)*n)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}
