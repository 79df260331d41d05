package app_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// server, pool and sweep the tests start must be shut down. When the tests
// are done it removes the airship binary they built (see binary), so that
// they leave nothing in $TMPDIR.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// A server that answered before reading a large body waits 500 ms
		// for the client to close (net/http), after the test is over.
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"),
		goleak.Cleanup(func(code int) {
			if binPath != "" {
				os.RemoveAll(filepath.Dir(binPath))
			}
			os.Exit(code)
		}))
}
