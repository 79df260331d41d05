package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// KeyState is what Begin found for an idempotency key.
type KeyState int

const (
	// KeyStarted: the key is new (or its record expired); the caller runs
	// the request under the returned reservation ID.
	KeyStarted KeyState = iota
	// KeyDone: a request with the key completed; replay its response.
	KeyDone
	// KeyBusy: a request with the key is running elsewhere.
	KeyBusy
	// KeyStale: a request with the key started and never completed (its
	// process died, or it failed and yielded the key). The caller settles
	// the record's reservation, then completes the key with the order that
	// claimed it or takes the key over with TakeOver.
	KeyStale
	// KeyReused: the key was used with a different request.
	KeyReused
)

// KeyRecord is the stored state of an idempotency key.
type KeyRecord struct {
	ReservationID string `db:"reservation_id"`
	RequestHash   string `db:"request_hash"`
	Status        sql.NullInt64
	Body          []byte
	StartedAt     int64 `db:"started_at"`
	ExpiresAt     int64 `db:"expires_at"`
}

// IdempotencyStore keeps Idempotency-Key records in the orders database
// (PostgreSQL or the embedded one: the SQL is the same).
type IdempotencyStore struct {
	db *sqlx.DB
	// ttl is how long a key is remembered; staleAfter is how long a request
	// may run before a retry with the same key takes it over.
	ttl, staleAfter time.Duration
	now             func() time.Time
}

// NewIdempotencyStore returns a store on a migrated database.
func NewIdempotencyStore(db *sqlx.DB, ttl, staleAfter time.Duration) *IdempotencyStore {
	return &IdempotencyStore{db: db, ttl: ttl, staleAfter: staleAfter, now: time.Now}
}

const (
	insertKey = `INSERT INTO idempotency_keys (key, request_hash, reservation_id, started_at, expires_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING`
	selectKey = `SELECT reservation_id, request_hash, status, body, started_at, expires_at
FROM idempotency_keys WHERE key = $1`
	dropExpiredKey = `DELETE FROM idempotency_keys WHERE key = $1 AND expires_at <= $2`
	takeOverKey    = `UPDATE idempotency_keys SET reservation_id = $3, started_at = $4
WHERE key = $1 AND reservation_id = $2 AND status IS NULL`
	completeKey = `UPDATE idempotency_keys SET status = $3, body = $4
WHERE key = $1 AND reservation_id = $2 AND status IS NULL`
	yieldKey  = `UPDATE idempotency_keys SET started_at = 0 WHERE key = $1 AND reservation_id = $2 AND status IS NULL`
	purgeKeys = `DELETE FROM idempotency_keys WHERE expires_at <= $1`
)

// Begin claims key for a request whose canonical form hashes to hash,
// under reservationID if the key is new.
func (s *IdempotencyStore) Begin(ctx context.Context, key, hash, reservationID string) (KeyState, KeyRecord, error) {
	for range 3 {
		now := s.now().UnixMilli()
		res, err := s.db.ExecContext(ctx, insertKey, key, hash, reservationID, now, now+s.ttl.Milliseconds())
		if err != nil {
			return 0, KeyRecord{}, fmt.Errorf("idempotency key: %w", dbErr(err))
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return KeyStarted, KeyRecord{ReservationID: reservationID, RequestHash: hash}, nil
		}
		var rec KeyRecord
		err = s.db.GetContext(ctx, &rec, selectKey, key)
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted meanwhile
		}
		if err != nil {
			return 0, KeyRecord{}, fmt.Errorf("idempotency key: %w", dbErr(err))
		}
		switch {
		case rec.ExpiresAt <= now:
			if _, err := s.db.ExecContext(ctx, dropExpiredKey, key, now); err != nil {
				return 0, KeyRecord{}, fmt.Errorf("idempotency key: %w", dbErr(err))
			}
			continue
		case rec.RequestHash != hash:
			return KeyReused, rec, nil
		case rec.Status.Valid:
			return KeyDone, rec, nil
		case now-rec.StartedAt < s.staleAfter.Milliseconds():
			return KeyBusy, rec, nil
		}
		return KeyStale, rec, nil
	}
	return KeyBusy, KeyRecord{}, nil
}

// TakeOver moves a stale key from its old reservation to a new one; false
// means another request took it first.
func (s *IdempotencyStore) TakeOver(ctx context.Context, key, oldReservationID, newReservationID string) (bool, error) {
	res, err := s.db.ExecContext(ctx, takeOverKey, key, oldReservationID, newReservationID, s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("take over idempotency key: %w", dbErr(err))
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Complete stores the response of the request that owns the key.
func (s *IdempotencyStore) Complete(ctx context.Context, key, reservationID string, status int, body []byte) error {
	if _, err := s.db.ExecContext(ctx, completeKey, key, reservationID, status, body); err != nil {
		return fmt.Errorf("complete idempotency key: %w", dbErr(err))
	}
	return nil
}

// Yield marks a key whose request failed in a way worth retrying (a
// backend was down) as stale at once: the next request with the key
// settles the reservation and, if no order committed, runs again. The key
// is not simply forgotten, because the failed request may have committed
// its order without learning it.
func (s *IdempotencyStore) Yield(ctx context.Context, key, reservationID string) error {
	if _, err := s.db.ExecContext(ctx, yieldKey, key, reservationID); err != nil {
		return fmt.Errorf("yield idempotency key: %w", dbErr(err))
	}
	return nil
}

// Purge deletes expired keys.
func (s *IdempotencyStore) Purge(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, purgeKeys, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("purge idempotency keys: %w", dbErr(err))
	}
	return nil
}

// dbErr classifies an error of either database.
func dbErr(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	if e := liteErr(err); errors.Is(e, ErrUnavailable) {
		return e
	}
	return pgErr(err)
}
