// Package periodic runs background work on a fixed period.
package periodic

import (
	"context"
	"log/slog"
	"time"
)

// Every runs fn now and then every period until ctx ends. A failure is
// logged as a warning under what, unless ctx ended; the next run comes
// at its time all the same.
func Every(ctx context.Context, period time.Duration, what string, fn func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, what, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
