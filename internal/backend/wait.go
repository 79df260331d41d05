package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/config"
)

// Permanent is a start-up failure that waiting cannot mend.
type Permanent struct{ error }

func (e Permanent) Unwrap() error { return e.error }

// Startup is the time a process gives its backends to answer: it began
// at Began and ends at Deadline (Began + startup_timeout).
type Startup struct{ Began, Deadline time.Time }

// StartupOf is the start-up of a process that begins now.
func StartupOf(cfg config.Config) Startup {
	now := time.Now()
	return Startup{Began: now, Deadline: now.Add(cfg.StartupTimeout)}
}

// Wait pings a backend until it answers or the deadline passes,
// retrying with exponential backoff (100 ms doubling, at most 2 s) right up
// to the deadline, with one last try at it. An answer that says the
// configuration is wrong (a permanent error: wrong password, unknown
// database, bad database index) ends the wait at once with the server's
// own error.
func Wait(ctx context.Context, name string, ping func(context.Context) error, st Startup, log *slog.Logger) error {
	try := func() (struct{}, error) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := ping(pctx)
		if err != nil && IsPermanent(err) {
			return struct{}{}, backoff.Permanent(Permanent{err})
		}
		return struct{}{}, err
	}
	_, err := backoff.Retry(ctx, try,
		backoff.WithBackOff(&untilDeadline{deadline: st.Deadline, exp: &backoff.ExponentialBackOff{
			InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 2 * time.Second}}),
		backoff.WithMaxElapsedTime(0), // the deadline is untilDeadline's
		backoff.WithNotify(func(err error, wait time.Duration) {
			log.Warn("backend unreachable, retrying", "backend", name, "retry_in", wait, "err", err)
		}))
	switch {
	case err == nil:
		return nil
	case IsPermanent(err):
		return fmt.Errorf("%s refuses airship's settings (not retried): %w", name, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%s is unreachable after %s: %w", name, time.Since(st.Began).Round(10*time.Millisecond), err)
}

// untilDeadline is a backoff that never waits past the deadline: its last
// wait ends at it, for one last try, and then it stops.
type untilDeadline struct {
	exp      *backoff.ExponentialBackOff
	deadline time.Time
}

func (b *untilDeadline) Reset() { b.exp.Reset() }

func (b *untilDeadline) NextBackOff() time.Duration {
	left := time.Until(b.deadline)
	if left <= 0 {
		return backoff.Stop
	}
	return min(b.exp.NextBackOff(), left)
}

// IsPermanent reports whether a backend's answer at start-up means its
// settings are wrong rather than that it is not there yet: PostgreSQL
// refusing the login, the database or the TLS setting, or Redis answering
// a command with an error other than the transient ones (loading, busy,
// failing over).
func IsPermanent(err error) bool {
	var perm Permanent
	if errors.As(err, &perm) {
		return true
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "28", "3D", "42": // invalid authorization, invalid catalog name, access rule
			return true
		}
		return false
	}
	if errors.Is(err, pq.ErrSSLNotSupported) {
		return true
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		code, _, _ := strings.Cut(rerr.Error(), " ")
		switch code {
		case "LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN":
			return false
		}
		return true
	}
	return false
}
