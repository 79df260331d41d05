package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// server, pool and sweep the tests start must be shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
