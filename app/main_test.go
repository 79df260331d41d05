package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// server, pool and sweep the tests start must be shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// A server that answered before reading a large body waits 500 ms
		// for the client to close (net/http), after the test is over.
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}
