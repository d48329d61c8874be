package admission

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAdmitParallel is Admit from every core at once, each goroutine
// publishing into rooms of its own, as the readers of a node's publishers
// do under a flood: a controller-wide lock shows here as a convoy.
func BenchmarkAdmitParallel(b *testing.B) {
	c := New(Config{Target: time.Hour}) // never limited: the fast path
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := next.Add(1)
		rooms := make([]string, 8)
		for i := range rooms {
			rooms[i] = "bench:" + strconv.FormatInt(id, 10) + ":" + strconv.Itoa(i)
		}
		conn := "c" + strconv.FormatInt(id, 10)
		i := 0
		for pb.Next() {
			c.Admit(rooms[i%len(rooms)], conn)
			i++
		}
	})
}
