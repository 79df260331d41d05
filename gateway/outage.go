package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// outageLog reports a backend outage in three kinds of lines instead of
// one per refused request: one warning when the first request is refused,
// a summary while it lasts, and one line when the backends answer again.
// The requests refused meanwhile are logged at debug only.
type outageLog struct {
	log   *slog.Logger
	probe func(context.Context) error
	// every is how often WatchOutages probes; summarize how often it
	// logs a summary while the outage lasts.
	every, summarize time.Duration

	mu      sync.Mutex
	down    bool
	since   time.Time
	refused int64
	lastErr error
	started chan struct{}
}

func newOutageLog(log *slog.Logger, probe func(context.Context) error) *outageLog {
	return &outageLog{log: log, probe: probe, every: time.Second, summarize: 10 * time.Second,
		started: make(chan struct{}, 1)}
}

// refuse records a request refused because a backend is unavailable.
func (o *outageLog) refuse(ctx context.Context, requestID string, err error) {
	o.mu.Lock()
	o.refused++
	o.lastErr = err
	first := !o.down
	if first {
		o.down, o.since = true, time.Now()
	}
	o.mu.Unlock()
	if first {
		o.log.WarnContext(ctx, "backend unavailable: requests that need it get 503 until it answers again", "err", err)
		select {
		case o.started <- struct{}{}:
		default:
		}
	}
	o.log.DebugContext(ctx, "request refused: backend unavailable", "request_id", requestID, "err", err)
}

// watch waits for outages and probes the backends during each one, until
// ctx ends.
func (o *outageLog) watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.started:
		}
		o.follow(ctx)
	}
}

// follow probes the backends until they answer, summarizing meanwhile.
func (o *outageLog) follow(ctx context.Context) {
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	lastSummary := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, o.every)
		err := o.probe(pctx)
		cancel()
		o.mu.Lock()
		since, refused, lastErr := o.since, o.refused, o.lastErr
		if err == nil {
			o.down, o.refused, o.lastErr = false, 0, nil
		}
		o.mu.Unlock()
		if err == nil {
			o.log.Info("backends available again", "outage", time.Since(since).Round(time.Millisecond), "refused", refused)
			return
		}
		if time.Since(lastSummary) >= o.summarize {
			lastSummary = time.Now()
			o.log.Warn("backend still unavailable", "for", time.Since(since).Round(time.Second),
				"refused", refused, "err", lastErr, "probe", err)
		}
	}
}
