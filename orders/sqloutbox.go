package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
)

// The outbox in the embedded database. One process uses the database, so
// one relay reads it; it holds no transaction while it publishes (that
// would hold the database's only writer lock): it reads the pending
// events, publishes them, then marks those confirmed in a transaction of
// their own. A crash between the confirm and the mark publishes them
// again (at least once, same message id).

const (
	litePendingEvents = pendingEvents
	liteMarkPublished = `UPDATE outbox SET published_at = ` + liteNow + `
WHERE id IN (SELECT value FROM json_each($1))`
	liteBacklog     = `SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL`
	litePurgeEvents = `DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE published_at < $1 ORDER BY published_at LIMIT $2)`
)

// DispatchEvents publishes up to limit pending events with publish and
// marks those it confirmed as published; it returns how many it marked.
func (s *SQLStore) DispatchEvents(ctx context.Context, limit int, publish DispatchFunc) (int, error) {
	rs, err := s.conn.Q().QueryContext(ctx, litePendingEvents, limit)
	if err != nil {
		return 0, fmt.Errorf("dispatch events: %w", sqlite.Classify(err))
	}
	events, err := scanEvents(rs, func(e *OutboxEvent, created any) error {
		t, err := liteTime(created)
		e.CreatedAt = t
		return err
	})
	if err != nil || len(events) == 0 {
		return 0, sqlite.Classify(err)
	}
	return publishThenMark(ctx, events, publish, func(ids []int64) error {
		raw, _ := json.Marshal(ids) // integers always marshal
		return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, liteMarkPublished, string(raw))
			if err != nil {
				return sqlite.Classify(err)
			}
			// One relay: nothing else marks or purges pending events.
			return expectRows(res, int64(len(ids)), fmt.Sprintf("mark %d events published", len(ids)))
		})
	})
}

// EventBacklog returns the number of pending events and when the oldest
// was written (zero when none is pending).
func (s *SQLStore) EventBacklog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullString
	)
	if err := s.conn.Q().QueryRowxContext(ctx, liteBacklog).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("event backlog: %w", sqlite.Classify(err))
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	t, err := liteTime(oldest.String)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("event backlog: %w", err)
	}
	return n, t, nil
}

// PurgeEvents deletes the events published before the given time and
// returns how many it deleted.
func (s *SQLStore) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	cutoff := before.UTC().Format(liteTimeFormat)
	var total int64
	for {
		res, err := s.conn.Q().ExecContext(ctx, litePurgeEvents, cutoff, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("purge events: %w", sqlite.Classify(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("purge events: %w", sqlite.Classify(err))
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}

// liteTime reads a timestamp column of the embedded database.
func liteTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp is %T", v)
	}
	t, err := time.Parse(liteTimeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t, nil
}
