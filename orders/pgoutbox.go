package orders

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// The outbox on PostgreSQL. Every replica may relay it at once: a relay
// locks the events it publishes (FOR UPDATE SKIP LOCKED, so relays never
// wait for each other and never take the same event), publishes them,
// and marks them published in the same transaction once the broker
// confirmed them. If it dies, its transaction rolls back and another
// relay takes the events; if the mark is lost after the confirm, the
// events are published again (at least once, same message id).

const (
	pgPendingEvents = pendingEvents + `
FOR UPDATE OF e SKIP LOCKED`
	pgMarkPublished = `UPDATE outbox SET published_at = now() WHERE id = ANY($1)`
	pgBacklog       = `SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL`
	pgPurgeEvents   = `DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE published_at < $1 ORDER BY published_at LIMIT $2)`
)

// DispatchEvents publishes up to limit pending events with publish and
// marks those it confirmed as published; it returns how many it marked.
func (s *PGStore) DispatchEvents(ctx context.Context, limit int, publish DispatchFunc) (int, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("dispatch events: %w", pgErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rs, err := tx.QueryContext(ctx, pgPendingEvents, limit)
	if err != nil {
		return 0, fmt.Errorf("dispatch events: %w", pgErr(err))
	}
	events, err := scanEvents(rs, func(e *OutboxEvent, created any) error {
		t, ok := created.(time.Time)
		if !ok {
			return fmt.Errorf("created_at is %T", created)
		}
		e.CreatedAt = t
		return nil
	})
	if err != nil || len(events) == 0 {
		return 0, pgErr(err)
	}
	return publishThenMark(ctx, events, publish, func(ids []int64) error {
		res, err := tx.ExecContext(ctx, pgMarkPublished, pq.Int64Array(ids))
		if err != nil {
			return pgErr(err)
		}
		// The events are locked by this transaction since it read them.
		if err := expectRows(res, int64(len(ids)), fmt.Sprintf("mark %d events published", len(ids))); err != nil {
			return err
		}
		return pgErr(tx.Commit())
	})
}

// EventBacklog returns the number of pending events and when the oldest
// was written (zero when none is pending).
func (s *PGStore) EventBacklog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullTime
	)
	if err := s.db.QueryRowContext(ctx, pgBacklog).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("event backlog: %w", pgErr(err))
	}
	return n, oldest.Time, nil
}

// PurgeEvents deletes the events published before the given time and
// returns how many it deleted.
func (s *PGStore) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, pgPurgeEvents, before, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("purge events: %w", pgErr(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("purge events: %w", pgErr(err))
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}

// scanEvents reads rows of pendingEvents and closes them; setCreated
// reads the created_at column, whose type depends on the dialect.
func scanEvents(rs *sql.Rows, setCreated func(e *OutboxEvent, created any) error) ([]OutboxEvent, error) {
	defer rs.Close()
	var out []OutboxEvent
	for rs.Next() {
		var (
			e       OutboxEvent
			body    string
			created any
		)
		if err := rs.Scan(&e.ID, &e.MessageID, &e.OrderID, &e.Type, &e.SchemaVersion, &body, &created); err != nil {
			return nil, err
		}
		if err := setCreated(&e, created); err != nil {
			return nil, fmt.Errorf("event %d: %w", e.ID, err)
		}
		e.Body = []byte(body)
		out = append(out, e)
	}
	return out, rs.Err()
}
