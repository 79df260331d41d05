package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Retry says how a request that is safe to repeat (a read, or POST
// /orders with an Idempotency-Key) is retried after an answer 503 or a
// network error (connection refused or reset, a timeout). Other requests
// and other answers are never retried.
//
// The waits grow exponentially from InitialInterval by 1.5 up to
// MaxInterval, each randomised by ±50% (jitter), unless the answer has a
// Retry-After header, whose wait is taken instead. Retrying stops after
// MaxAttempts attempts, when the next attempt would start more than
// MaxElapsed after the first, or when it would start after the context's
// deadline; the call then returns the last attempt's error at once.
type Retry struct {
	// MaxAttempts is the most attempts of one request, the first included;
	// 1 (or less) turns retries off.
	MaxAttempts int
	// InitialInterval is the first wait; MaxInterval the longest before
	// jitter.
	InitialInterval, MaxInterval time.Duration
	// MaxElapsed bounds the time from the first attempt to the start of
	// the last one; 0 means no bound but the context's.
	MaxElapsed time.Duration
	// OnRetry, if not nil, is called before each wait with the failed
	// attempt's error and the wait (for logging).
	OnRetry func(err error, wait time.Duration)
}

// DefaultRetry is the retry policy of a new Client: up to 4 attempts,
// waits from 100 ms to 5 s, retries for up to 30 s.
var DefaultRetry = Retry{MaxAttempts: 4, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsed: 30 * time.Second}

// NoRetry sends every request once.
var NoRetry = Retry{MaxAttempts: 1}

// WithRetry replaces DefaultRetry.
func WithRetry(r Retry) Option {
	return func(c *Client) error {
		if r.MaxAttempts > 1 && (r.InitialInterval <= 0 || r.MaxInterval < r.InitialInterval || r.MaxElapsed < 0) {
			return fmt.Errorf("client: retry: want 0 < InitialInterval <= MaxInterval and MaxElapsed >= 0")
		}
		c.retry = r
		return nil
	}
}

// networkError is an attempt that got no answer.
type networkError struct{ err error }

func (e *networkError) Error() string { return e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }

// waitError is a retryable error with the wait its answer's Retry-After
// asks for; backoff.Retry takes that wait instead of its own.
type waitError struct {
	err  error
	wait *backoff.RetryAfterError
}

func (e *waitError) Error() string   { return e.err.Error() }
func (e *waitError) Unwrap() []error { return []error{e.err, e.wait} }

// retryable reports whether a failed attempt may be repeated.
func retryable(err error) bool {
	var ne *networkError
	var ae *Error
	return errors.As(err, &ne) || (errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable)
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// do runs attempt until it succeeds, fails for good, or r gives up.
func (r Retry) do(ctx context.Context, attempt func() error) error {
	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval, exp.MaxInterval = r.InitialInterval, r.MaxInterval
	b := &deadlineBackOff{BackOff: exp, ctx: ctx}
	var last error
	op := func() (struct{}, error) {
		b.retryAfter, b.hasRetryAfter = 0, false
		err := attempt()
		if err == nil {
			return struct{}{}, nil
		}
		last = err
		if ctx.Err() != nil || !retryable(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		var ae *Error
		if errors.As(err, &ae) {
			if wait, ok := retryAfter(ae.RetryAfter); ok {
				b.retryAfter, b.hasRetryAfter = wait, true
				return struct{}{}, &waitError{err: err, wait: &backoff.RetryAfterError{Duration: wait}}
			}
		}
		return struct{}{}, err
	}
	opts := []backoff.RetryOption{backoff.WithBackOff(b), backoff.WithMaxTries(uint(r.MaxAttempts)),
		backoff.WithMaxElapsedTime(r.MaxElapsed)}
	if r.OnRetry != nil {
		opts = append(opts, backoff.WithNotify(func(err error, wait time.Duration) { r.OnRetry(unwrapWait(err), wait) }))
	}
	_, err := backoff.Retry(ctx, op, opts...)
	if err == nil {
		return nil
	}
	err = unwrapWait(err)
	if last != nil && err != last && ctx.Err() != nil {
		// Cut short while waiting: say why, and what the last attempt got.
		return fmt.Errorf("%w (last attempt: %w)", err, last)
	}
	return err
}

func unwrapWait(err error) error {
	var we *waitError
	if errors.As(err, &we) {
		return we.err
	}
	return err
}

// deadlineBackOff stops retrying when the next attempt would start after
// the context's deadline: waiting for it could only end in the context's
// error, and the caller learns more from the last attempt's.
type deadlineBackOff struct {
	backoff.BackOff
	ctx context.Context
	// retryAfter is the wait the last answer asked for, which backoff.Retry
	// takes instead of NextBackOff's.
	retryAfter    time.Duration
	hasRetryAfter bool
}

func (b *deadlineBackOff) NextBackOff() time.Duration {
	next := b.BackOff.NextBackOff()
	wait := next
	if b.hasRetryAfter {
		wait = b.retryAfter
	}
	if deadline, ok := b.ctx.Deadline(); ok && time.Until(deadline) < wait {
		return backoff.Stop
	}
	return next
}
