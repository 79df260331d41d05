package periodic_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/airshipltd/airship/internal/periodic"
)

// TestEvery runs at once, then once per period, logs each failure, and
// returns when its context ends.
func TestEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer // read once Every has returned
		log := slog.New(slog.NewTextHandler(&out, nil))
		ctx, cancel := context.WithCancel(t.Context())
		var runs atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			periodic.Every(ctx, time.Minute, "sweep", func(context.Context) error {
				if runs.Add(1) == 2 {
					return errors.New("backend down")
				}
				return nil
			}, log)
		}()
		synctest.Wait()
		if runs.Load() != 1 {
			t.Fatalf("runs at start = %d, want 1", runs.Load())
		}
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if runs.Load() != 4 {
			t.Fatalf("runs after 3 periods = %d, want 4", runs.Load())
		}
		cancel()
		<-done
		if got := strings.Count(out.String(), "msg=sweep"); got != 1 || !strings.Contains(out.String(), "backend down") {
			t.Fatalf("log = %q, want the one failure", out.String())
		}
	})
}
