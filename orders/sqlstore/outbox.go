package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/orders"
)

// The outbox of order events (db/migrations, 00005_outbox.sql): each
// change writes its event in its own transaction (WithEvents), and the
// relay (package events) publishes them through DispatchEvents. How
// relays share the outbox is the dialect's (lockPending).

const (
	// insertEvent writes an event to the outbox.
	insertEvent = `INSERT INTO outbox (message_id, order_id, event_type, schema_version, body)
VALUES ($1, $2, $3, $4, $5)`
	// pendingEvents selects, in id order, up to $1 pending events that
	// are the first pending event of their order: an event is published
	// only after every earlier event of its order was, whatever the
	// number of relays. The dialects add their locking.
	pendingEvents = `SELECT e.id, e.message_id, e.order_id, e.event_type, e.schema_version, e.body, e.created_at
FROM outbox e
WHERE e.published_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.published_at IS NULL AND p.order_id = e.order_id AND p.id < e.id)
ORDER BY e.id
LIMIT $1`
	backlog     = `SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL`
	purgeEvents = `DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE published_at < $1 ORDER BY published_at LIMIT $2)`
)

// purgeBatch bounds the rows one purge statement deletes.
const purgeBatch = 5000

// eventOrder is what an event tells of o.
func eventOrder(o orders.Order) events.Order {
	e := events.Order{ID: o.ID, Lines: make([]events.OrderLine, len(o.Lines))}
	for i, l := range o.Lines {
		e.Lines[i] = events.OrderLine{ID: l.ID, ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity}
	}
	return e
}

// event writes an event of the given type about o to the outbox in tx, the
// transaction of the change, if events are on.
func (s *Store) event(ctx context.Context, tx *sqlx.Tx, eventType string, o orders.Order) error {
	if !s.events {
		return nil
	}
	body, err := events.Body(eventOrder(o))
	if err != nil {
		return fmt.Errorf("%s event of order %d: %w", eventType, o.ID, err)
	}
	what := fmt.Sprintf("%s event of order %d", eventType, o.ID)
	res, err := tx.ExecContext(ctx, insertEvent, uuid.NewString(), o.ID, eventType, events.SchemaVersion, string(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return expectRows(res, 1, what)
}

// DispatchEvents publishes up to limit pending events with publish and
// marks those it confirmed as published; it returns how many it marked.
// On PostgreSQL the events stay locked by the transaction that read them
// until it marks them; on SQLite they are read, published, then marked in
// a transaction of their own.
func (s *Store) DispatchEvents(ctx context.Context, limit int, publish events.DispatchFunc) (int, error) {
	if s.d.lockPending == "" {
		evs, err := s.pendingEvents(ctx, s.q(), limit)
		if err != nil || len(evs) == 0 {
			return 0, err
		}
		return publishThenMark(ctx, evs, publish, func(ids []int64) error {
			// One relay: nothing else marks or purges pending events.
			return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.markPublished(ctx, tx, ids) })
		})
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("dispatch events: %w", s.d.classify(err))
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	evs, err := s.pendingEvents(ctx, tx, limit)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return publishThenMark(ctx, evs, publish, func(ids []int64) error {
		// The events are locked by this transaction since it read them.
		if err := s.markPublished(ctx, tx, ids); err != nil {
			return err
		}
		return s.d.classify(tx.Commit())
	})
}

// pendingEvents reads pending events with q.
func (s *Store) pendingEvents(ctx context.Context, q sqlx.QueryerContext, limit int) ([]events.Event, error) {
	rs, err := q.QueryContext(ctx, s.d.stmt.pendingEvents, limit)
	if err != nil {
		return nil, fmt.Errorf("dispatch events: %w", s.d.classify(err))
	}
	defer rs.Close()
	var out []events.Event
	for rs.Next() {
		var (
			e       events.Event
			body    string
			created timeValue
		)
		if err := rs.Scan(&e.ID, &e.MessageID, &e.OrderID, &e.Type, &e.SchemaVersion, &body, &created); err != nil {
			return nil, fmt.Errorf("dispatch events: %w", s.d.classify(err))
		}
		e.Body, e.CreatedAt = []byte(body), created.t
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("dispatch events: %w", s.d.classify(err))
	}
	return out, nil
}

// markPublished marks the events published, in tx.
func (s *Store) markPublished(ctx context.Context, tx *sqlx.Tx, ids []int64) error {
	res, err := tx.ExecContext(ctx, s.d.stmt.markPublished, s.d.ids(ids))
	if err != nil {
		return s.d.classify(err)
	}
	return expectRows(res, int64(len(ids)), fmt.Sprintf("mark %d events published", len(ids)))
}

// publishThenMark publishes events and marks the ones the broker
// confirmed with mark; it returns how many it marked.
func publishThenMark(ctx context.Context, evs []events.Event, publish events.DispatchFunc, mark func(ids []int64) error) (int, error) {
	n, perr := publish(ctx, evs)
	if n == 0 {
		return 0, perr
	}
	ids := make([]int64, n)
	for i := range n {
		ids[i] = evs[i].ID
	}
	if err := mark(ids); err != nil {
		return 0, fmt.Errorf("mark events published: %w", err)
	}
	return n, perr
}

// EventBacklog returns the number of pending events and when the oldest
// was written (zero when none is pending).
func (s *Store) EventBacklog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest timeValue
	)
	if err := s.q().QueryRowxContext(ctx, backlog).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("event backlog: %w", s.d.classify(err))
	}
	return n, oldest.t, nil
}

// PurgeEvents deletes the events published before the given time and
// returns how many it deleted.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.q().ExecContext(ctx, purgeEvents, s.d.timeArg(before), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("purge events: %w", s.d.classify(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("purge events: %w", s.d.classify(err))
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}
