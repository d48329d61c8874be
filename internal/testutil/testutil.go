// Package testutil holds the few helpers the project's tests share: a poller
// that waits for a condition instead of sleeping, and a log sink safe for
// concurrent writers. It is imported by tests only.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// CheckFor polls cond every few milliseconds until it returns nil, and
// fails the test with cond's last error once timeout has passed. cond runs
// at least once, and once more at the deadline.
func CheckFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not met after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for capturing
// logs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
