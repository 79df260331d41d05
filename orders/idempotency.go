package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/airshipltd/airship/internal/errs"
)

// Placing an order under an idempotency key (PlaceOnce) is a protocol over
// one record per key, kept by the orders store:
//
//	BeginKey ──► new: this request owns the key; it places its order under
//	   │              the record's reservation id, then CompleteKey stores
//	   │              the outcome (the order's id, or the refusal), or, if a
//	   │              backend failed, YieldKey marks the key stale at once
//	   ├──► done: the outcome is given again (a replay)
//	   ├──► other request hash: KeyReusedError
//	   ├──► running elsewhere: wait for its outcome (KeyInUseError if the
//	   │              caller gives up first)
//	   └──► stale (its request died or yielded): Settle its reservation;
//	                  if an order claimed it, complete the key with that order;
//	                  else the reservation is void and TakeOverKey moves the
//	                  key to this request, which runs anew
//
// The outcome is stored as domain data, never as a response: the order id,
// or the refusal in its portable form (errs.Portable).

// KeyRecord is the stored state of an idempotency key.
type KeyRecord struct {
	Key           string
	RequestHash   string
	ReservationID string
	// StartedAt and ExpiresAt are Unix milliseconds.
	StartedAt, ExpiresAt int64
	// The outcome, once the request that owns the key completed: the
	// order it placed, or its refusal.
	OrderID int64
	Refusal *errs.Portable
}

// Done reports whether the key's request completed.
func (r KeyRecord) Done() bool { return r.OrderID != 0 || r.Refusal != nil }

// KeyStore keeps idempotency key records; the orders stores implement it
// on their own database.
type KeyStore interface {
	// BeginKey inserts rec unless a record with its key exists, and
	// returns the record that is there and whether it is rec.
	BeginKey(ctx context.Context, rec KeyRecord) (KeyRecord, bool, error)
	// DropExpiredKey deletes the key's record if it expired by now (ms).
	DropExpiredKey(ctx context.Context, key string, now int64) error
	// TakeOverKey moves an uncompleted key from its old reservation to a
	// new one, started now (ms); false means another request took it.
	TakeOverKey(ctx context.Context, key, oldReservationID, newReservationID string, now int64) (bool, error)
	// CompleteKey stores the outcome of the request that owns the key.
	CompleteKey(ctx context.Context, key, reservationID string, orderID int64, refusal *errs.Portable) error
	// YieldKey marks the key of a request that failed in a way worth
	// retrying as stale at once.
	YieldKey(ctx context.Context, key, reservationID string) error
	// PurgeKeys deletes the records that expired by now (ms).
	PurgeKeys(ctx context.Context, now int64) error
}

// KeyReusedError means the key was used before with another request.
type KeyReusedError struct{ Key string }

func (e *KeyReusedError) Error() string {
	return fmt.Sprintf("Idempotency-Key %s was used with a different request", e.Key)
}

// Kind is errs.KeyReused.
func (e *KeyReusedError) Kind() errs.Kind { return errs.KeyReused }

// Fields are the error's portable fields.
func (e *KeyReusedError) Fields() map[string]string { return map[string]string{"key": e.Key} }

// KeyInUseError means a request with the key is still running.
type KeyInUseError struct{ Key string }

func (e *KeyInUseError) Error() string {
	return fmt.Sprintf("a request with Idempotency-Key %s is still running; retry later", e.Key)
}

// Kind is errs.KeyInUse.
func (e *KeyInUseError) Kind() errs.Kind { return errs.KeyInUse }

// Fields are the error's portable fields.
func (e *KeyInUseError) Fields() map[string]string { return map[string]string{"key": e.Key} }

func init() {
	errs.Register(errs.KeyReused, func(p errs.Portable) error { return &KeyReusedError{Key: p.Fields["key"]} })
	errs.Register(errs.KeyInUse, func(p errs.Portable) error { return &KeyInUseError{Key: p.Fields["key"]} })
}

// Placed is the outcome of PlaceOnce.
type Placed struct {
	OrderID int64
	// Replayed is true when the outcome is that of an earlier request with
	// the same key (an order, or an error).
	Replayed bool
}

// busyPoll is how often a request waits for another with the same key.
const busyPoll = 25 * time.Millisecond

// PlaceOnce places an order at most once per idempotency key: the first
// request places it; a retry with the same lines gets the first outcome
// again (the order, or the same error) with Replayed set; the same key
// with other lines fails with *KeyReusedError; a request that arrives
// while the first runs waits for its outcome, or fails with
// *KeyInUseError if ctx ends first. Refusals are outcomes too; failures
// worth retrying (a backend down) are not stored, and the next request
// with the key settles what the failed one left (see KeyStore).
func (s *Service) PlaceOnce(ctx context.Context, key string, lines []NewLine) (Placed, error) {
	if p := KeyProblem(key); p != "" {
		return Placed{}, errs.Problems([]string{"Idempotency-Key: " + p})
	}
	if err := errs.Problems(NewLinesProblems(lines)); err != nil {
		return Placed{}, err
	}
	hash := linesHash(lines)
	reservationID := uuid.NewString()
	waiting := false // for a running request with the key
	for {
		now := s.now()
		rec, fresh, err := s.orders.BeginKey(ctx, KeyRecord{
			Key: key, RequestHash: hash, ReservationID: reservationID,
			StartedAt: now.UnixMilli(), ExpiresAt: now.Add(s.cfg.KeyTTL).UnixMilli(),
		})
		if err != nil {
			if waiting && ctx.Err() != nil {
				// The caller gave up while this waited, during a look at
				// the key rather than between two: the key is still in use.
				return Placed{}, &KeyInUseError{Key: key}
			}
			return Placed{}, err
		}
		if fresh {
			return s.placeOwned(ctx, key, reservationID, lines)
		}
		switch {
		case rec.ExpiresAt <= now.UnixMilli():
			if err := s.orders.DropExpiredKey(ctx, key, now.UnixMilli()); err != nil {
				return Placed{}, err
			}
		case rec.RequestHash != hash:
			return Placed{}, &KeyReusedError{Key: key}
		case rec.Done():
			s.obs.IdempotentReplay()
			if rec.Refusal != nil {
				return Placed{Replayed: true}, errs.Decode(*rec.Refusal)
			}
			return Placed{OrderID: rec.OrderID, Replayed: true}, nil
		case now.UnixMilli()-rec.StartedAt < s.cfg.KeyStaleAfter.Milliseconds():
			waiting = true
			select {
			case <-ctx.Done():
				return Placed{}, &KeyInUseError{Key: key}
			case <-time.After(busyPoll):
			}
		default: // stale: its request died, or failed and yielded it
			orderID, committed, err := s.orders.Settle(ctx, rec.ReservationID)
			if err != nil {
				return Placed{}, err
			}
			if committed { // complete it, then replay it
				if err := s.orders.CompleteKey(ctx, key, rec.ReservationID, orderID, nil); err != nil {
					return Placed{}, err
				}
				continue
			}
			took, err := s.orders.TakeOverKey(ctx, key, rec.ReservationID, reservationID, now.UnixMilli())
			if err != nil {
				return Placed{}, err
			}
			if took {
				return s.placeOwned(ctx, key, reservationID, lines)
			}
		}
	}
}

// placeOwned places the order of the request that owns key and records
// its outcome.
func (s *Service) placeOwned(ctx context.Context, key, reservationID string, lines []NewLine) (Placed, error) {
	o, err := s.PlaceAs(ctx, reservationID, lines)
	if err != nil && errs.Of(err).Retryable() {
		// The next request with the key settles the reservation first.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
		defer cancel()
		if yerr := s.orders.YieldKey(ctx, key, reservationID); yerr != nil {
			s.log.WarnContext(ctx, "yield idempotency key", "key", key, "err", yerr)
		}
		return Placed{}, err
	}
	var refusal *errs.Portable
	if err != nil {
		p := errs.Encode(err)
		refusal = &p
	}
	if cerr := s.orders.CompleteKey(ctx, key, reservationID, o.ID, refusal); cerr != nil {
		return Placed{}, cerr
	}
	return Placed{OrderID: o.ID}, err
}

// PurgeKeys deletes the idempotency keys that expired.
func (s *Service) PurgeKeys(ctx context.Context) error {
	return s.orders.PurgeKeys(ctx, s.now().UnixMilli())
}

// linesHash identifies a create-order request by its meaning, not its
// bytes: the same lines with other spacing or number forms are the same
// request.
func linesHash(lines []NewLine) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l.ProductID + "\x00" + l.Price.StringFixed(2) + "\x00"))
		h.Write([]byte{byte(l.Quantity >> 24), byte(l.Quantity >> 16), byte(l.Quantity >> 8), byte(l.Quantity), '\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}
