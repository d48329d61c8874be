package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// node it starts must stop its raft groups, links and membership.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
