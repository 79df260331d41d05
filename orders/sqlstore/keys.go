package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/orders"
)

// keyRecords implements orders.KeyStore (the records of PlaceOnce) with
// SQL that PostgreSQL and SQLite both run; the store gives it its
// connection and its dialect's error classifier.
type keyRecords struct {
	q        func() sqlx.ExtContext
	classify func(error) error
}

const (
	insertKey = `INSERT INTO idempotency_keys (key, request_hash, reservation_id, started_at, expires_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`
	selectKey = `SELECT request_hash, reservation_id, started_at, expires_at, order_id, refusal
FROM idempotency_keys WHERE key = $1`
	dropExpiredKey = `DELETE FROM idempotency_keys WHERE key = $1 AND expires_at <= $2`
	takeOverKey    = `UPDATE idempotency_keys SET reservation_id = $3, started_at = $4
WHERE key = $1 AND reservation_id = $2 AND order_id IS NULL AND refusal IS NULL`
	completeKey = `UPDATE idempotency_keys SET order_id = $3, refusal = $4
WHERE key = $1 AND reservation_id = $2 AND order_id IS NULL AND refusal IS NULL`
	yieldKey = `UPDATE idempotency_keys SET started_at = 0
WHERE key = $1 AND reservation_id = $2 AND order_id IS NULL AND refusal IS NULL`
	purgeKeys = `DELETE FROM idempotency_keys WHERE expires_at <= $1`
)

// BeginKey implements orders.KeyStore. A record deleted between the insert and
// the read (it expired and was dropped) is inserted again.
func (k keyRecords) BeginKey(ctx context.Context, rec orders.KeyRecord) (orders.KeyRecord, bool, error) {
	for range 3 {
		res, err := k.q().ExecContext(ctx, insertKey, rec.Key, rec.RequestHash, rec.ReservationID, rec.StartedAt, rec.ExpiresAt)
		if err != nil {
			return orders.KeyRecord{}, false, fmt.Errorf("idempotency key: %w", k.classify(err))
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return rec, true, nil
		}
		got := orders.KeyRecord{Key: rec.Key}
		var (
			orderID sql.NullInt64
			refusal []byte
		)
		err = k.q().QueryRowxContext(ctx, selectKey, rec.Key).Scan(
			&got.RequestHash, &got.ReservationID, &got.StartedAt, &got.ExpiresAt, &orderID, &refusal)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return orders.KeyRecord{}, false, fmt.Errorf("idempotency key: %w", k.classify(err))
		}
		got.OrderID = orderID.Int64
		if refusal != nil {
			got.Refusal = new(errs.Portable)
			if err := json.Unmarshal(refusal, got.Refusal); err != nil {
				return orders.KeyRecord{}, false, fmt.Errorf("idempotency key %s: unreadable outcome: %w", rec.Key, err)
			}
		}
		return got, false, nil
	}
	return orders.KeyRecord{}, false, fmt.Errorf("idempotency key %s: %w", rec.Key, orders.ErrConflict)
}

// DropExpiredKey implements orders.KeyStore.
func (k keyRecords) DropExpiredKey(ctx context.Context, key string, now int64) error {
	if _, err := k.q().ExecContext(ctx, dropExpiredKey, key, now); err != nil {
		return fmt.Errorf("idempotency key: %w", k.classify(err))
	}
	return nil
}

// TakeOverKey implements orders.KeyStore.
func (k keyRecords) TakeOverKey(ctx context.Context, key, oldReservationID, newReservationID string, now int64) (bool, error) {
	res, err := k.q().ExecContext(ctx, takeOverKey, key, oldReservationID, newReservationID, now)
	if err != nil {
		return false, fmt.Errorf("take over idempotency key: %w", k.classify(err))
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// CompleteKey implements orders.KeyStore.
func (k keyRecords) CompleteKey(ctx context.Context, key, reservationID string, orderID int64, refusal *errs.Portable) error {
	var (
		order any
		text  any
	)
	if orderID != 0 {
		order = orderID
	}
	if refusal != nil {
		raw, err := json.Marshal(refusal)
		if err != nil {
			return fmt.Errorf("complete idempotency key: %w", err)
		}
		text = string(raw)
	}
	if _, err := k.q().ExecContext(ctx, completeKey, key, reservationID, order, text); err != nil {
		return fmt.Errorf("complete idempotency key: %w", k.classify(err))
	}
	return nil
}

// YieldKey implements orders.KeyStore.
func (k keyRecords) YieldKey(ctx context.Context, key, reservationID string) error {
	if _, err := k.q().ExecContext(ctx, yieldKey, key, reservationID); err != nil {
		return fmt.Errorf("yield idempotency key: %w", k.classify(err))
	}
	return nil
}

// PurgeKeys implements orders.KeyStore.
func (k keyRecords) PurgeKeys(ctx context.Context, now int64) error {
	if _, err := k.q().ExecContext(ctx, purgeKeys, now); err != nil {
		return fmt.Errorf("purge idempotency keys: %w", k.classify(err))
	}
	return nil
}
