// Package events publishes airship's integration events: the relay takes
// the order events that the orders stores write to their outbox, in the
// transaction of each change, and publishes them to RabbitMQ with
// publisher confirms (docs/events.md). Delivery is at least once: an
// event whose confirm or mark was lost is published again, with the same
// message id.
package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/airshipltd/airship/internal/periodic"
)

// Outbox is what the relay needs of the store whose database holds the
// outbox (orders/sqlstore, on PostgreSQL or the embedded database).
type Outbox interface {
	// DispatchEvents publishes up to limit pending events, each the first
	// pending event of its order, and marks those the publisher confirmed.
	DispatchEvents(ctx context.Context, limit int, publish DispatchFunc) (int, error)
	// EventBacklog returns the number of pending events and when the
	// oldest was written.
	EventBacklog(ctx context.Context) (int, time.Time, error)
	// PurgeEvents deletes the events published before the given time.
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
}

// Publisher sends events to the broker. Publish returns how many events,
// from the first, the broker confirmed; it is called by one goroutine at
// a time.
type Publisher interface {
	Publish(ctx context.Context, events []Event) (int, error)
	Close() error
}

// Config tunes a Relay.
type Config struct {
	// BatchSize is the most events one round publishes.
	BatchSize int
	// Interval is how often the relay looks for events written by other
	// replicas; it is woken at once by the changes of its own (Notify).
	Interval time.Duration
	// Retention is how long published events stay in the outbox.
	Retention time.Duration
}

// Backoff after a failed round: from minBackoff, doubling, at most
// maxBackoff, so that a broker that comes back is used within seconds.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// minGap is the least time between the starts of two rounds that a
// change woke: under a stream of orders a round then carries the events
// of many, instead of each order paying a round (a transaction, a
// publish and a confirm) of its own. An idle relay starts at once.
const minGap = 10 * time.Millisecond

// roundTimeout bounds one round (read, publish and confirm, mark). A round
// under way when the relay stops is finished rather than cut short, so
// that what the broker confirmed is marked.
const roundTimeout = 30 * time.Second

// staleAfter is the age of the oldest pending event from which the
// backlog is logged as a warning.
const staleAfter = time.Minute

// Relay publishes the events of an outbox. Every replica runs one; see
// the Outbox implementations for how they share the outbox.
type Relay struct {
	outbox Outbox
	pub    Publisher
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}

	// failingSince is when the current run of failed rounds began (zero
	// while rounds succeed); failures counts them.
	failingSince time.Time
	failures     int
}

// NewRelay returns a relay of the outbox to the publisher.
func NewRelay(outbox Outbox, pub Publisher, cfg Config, log *slog.Logger) *Relay {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	return &Relay{outbox: outbox, pub: pub, cfg: cfg, log: log, now: time.Now, wake: make(chan struct{}, 1)}
}

// Notify wakes the relay: an order change with an event committed. It
// never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes events until ctx ends: a round at once, then whenever
// Notify wakes it or Interval passes; after a round that published
// anything, the next at once (a round takes one event per order); after a failure (the broker or the database
// unreachable), again after a backoff. Events wait in the outbox
// meanwhile.
func (r *Relay) Run(ctx context.Context) {
	backoff := minBackoff
	for {
		began := time.Now()
		n, err := r.Round(ctx)
		wait := r.cfg.Interval
		switch {
		case err != nil:
			r.failed(err)
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		default:
			r.recovered()
			backoff = minBackoff
			if n > 0 {
				// There may be more: a full batch, or the next events of the
				// orders just published (a round takes one event per order).
				wait = 0
			}
		}
		if ctx.Err() != nil {
			return
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
			if err != nil { // back off all the same
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			} else if gap := minGap - time.Since(began); gap > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(gap):
				}
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// Round publishes one batch of pending events and returns how many were
// confirmed and marked.
func (r *Relay) Round(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), roundTimeout)
	defer cancel()
	return r.outbox.DispatchEvents(ctx, r.cfg.BatchSize, r.pub.Publish)
}

func (r *Relay) failed(err error) {
	r.failures++
	if r.failingSince.IsZero() {
		r.failingSince = r.now()
		r.log.Warn("events: cannot publish; events wait in the outbox, retrying", "err", err)
		return
	}
	r.log.Debug("events: still cannot publish", "err", err, "failures", r.failures)
}

func (r *Relay) recovered() {
	if r.failingSince.IsZero() {
		return
	}
	r.log.Info("events: publishing again", "after", r.now().Sub(r.failingSince).Round(time.Millisecond),
		"failed_rounds", r.failures)
	r.failingSince, r.failures = time.Time{}, 0
}

// Backlog returns the number of events waiting in the outbox and the age
// of the oldest (0 when none waits).
func (r *Relay) Backlog(ctx context.Context) (count int, oldest time.Duration, err error) {
	n, since, err := r.outbox.EventBacklog(ctx)
	if err != nil || n == 0 {
		return n, 0, err
	}
	return n, max(0, r.now().Sub(since)), nil
}

// LogBacklog logs the backlog when events wait: as a warning once the
// oldest has waited staleAfter or more.
func (r *Relay) LogBacklog(ctx context.Context) error {
	n, oldest, err := r.Backlog(ctx)
	if err != nil || n == 0 {
		return err
	}
	level := slog.LevelInfo
	if oldest >= staleAfter {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "events: outbox backlog", "pending", n, "oldest_age", oldest.Round(time.Millisecond))
	return nil
}

// backlogLogEvery is the period of the backlog's log line.
const backlogLogEvery = 30 * time.Second

// Maintain does the relay's upkeep until ctx ends: it logs the backlog
// every 30 seconds (LogBacklog) and purges published events every hour
// (Purge).
func (r *Relay) Maintain(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { periodic.Every(ctx, backlogLogEvery, "event backlog", r.LogBacklog, r.log) })
	periodic.Every(ctx, time.Hour, "purge published events", r.Purge, r.log)
	wg.Wait()
}

// Purge deletes the events published longer ago than Retention.
func (r *Relay) Purge(ctx context.Context) error {
	n, err := r.outbox.PurgeEvents(ctx, r.now().Add(-r.cfg.Retention))
	if n > 0 {
		r.log.Info("events: purged published events", "deleted", n, "retention", r.cfg.Retention)
	}
	return err
}

// Close closes the publisher's connection.
func (r *Relay) Close() error { return r.pub.Close() }
