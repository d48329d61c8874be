package membership

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Membership's Shutdown must stop memberlist and its own goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
