package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/orders"
)

// Idempotency keeps the Idempotency-Key records of POST /orders.
type Idempotency interface {
	Begin(ctx context.Context, key, hash, reservationID string) (orders.KeyState, orders.KeyRecord, error)
	TakeOver(ctx context.Context, key, oldReservationID, newReservationID string) (bool, error)
	Complete(ctx context.Context, key, reservationID string, status int, body []byte) error
	Yield(ctx context.Context, key, reservationID string) error
}

// HeaderIdempotencyKey makes a POST /orders safe to retry (IETF httpapi
// idempotency-key draft).
const HeaderIdempotencyKey = "Idempotency-Key"

// busyPoll is how often a request waits for another with the same key.
const busyPoll = 25 * time.Millisecond

func validKey(key string) bool {
	if len(key) == 0 || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// linesHash identifies a create-order request by its meaning, not its
// bytes: the same lines with other spacing or number forms are the same
// request.
func linesHash(lines []orders.NewLine) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l.ProductID + "\x00" + l.Price.StringFixed(2) + "\x00"))
		h.Write([]byte{byte(l.Quantity >> 24), byte(l.Quantity >> 16), byte(l.Quantity >> 8), byte(l.Quantity), '\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// placeOnce places an order at most once per Idempotency-Key: the first
// request runs, a retry with the same lines gets the first response, a
// request with the same key and other lines gets 422, and a request that
// arrives while the first runs waits for its response.
//
// Each key records the reservation its order is placed under. If the
// request that owned a key never completed (its process died, or a backend
// failed), the next request with the key settles that reservation: if an
// order claimed it, that order is the answer; otherwise the reservation is
// void, no order can commit on it any more, and the request runs anew.
func (g *Gateway) placeOnce(c echo.Context, key string, lines []orders.NewLine) error {
	ctx := c.Request().Context()
	hash := linesHash(lines)
	reservationID := uuid.NewString()
	for {
		state, rec, err := g.idem.Begin(ctx, key, hash, reservationID)
		if err != nil {
			return err
		}
		switch state {
		case orders.KeyReused:
			return newError(http.StatusUnprocessableEntity, CodeIdempotencyKeyReused,
				"Idempotency-Key %s was used with a different request", key)
		case orders.KeyDone:
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.Blob(int(rec.Status.Int64), echo.MIMEApplicationJSON, rec.Body)
		case orders.KeyBusy:
			select {
			case <-ctx.Done():
				return newError(http.StatusConflict, CodeIdempotencyKeyInUse,
					"a request with Idempotency-Key %s is still running; retry later", key)
			case <-time.After(busyPoll):
				continue
			}
		case orders.KeyStale:
			orderID, committed, err := g.orders.Outcome(ctx, rec.ReservationID)
			if err != nil {
				return err
			}
			if committed {
				body, _ := json.Marshal(map[string]int64{"id": orderID})
				if err := g.idem.Complete(ctx, key, rec.ReservationID, http.StatusOK, body); err != nil {
					return err
				}
				continue // replays what was stored
			}
			if ok, err := g.idem.TakeOver(ctx, key, rec.ReservationID, reservationID); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
		}
		return g.placeOwned(c, key, reservationID, lines)
	}
}

// placeOwned places the order of the request that owns key, and records
// its response.
func (g *Gateway) placeOwned(c echo.Context, key, reservationID string, lines []orders.NewLine) error {
	ctx := c.Request().Context()
	o, err := g.orders.PlaceAs(ctx, reservationID, lines)
	status, body := http.StatusOK, any(map[string]int64{"id": o.ID})
	if err != nil {
		var (
			errBody    ErrorBody
			unexpected bool
		)
		status, errBody, unexpected = toResponse(err)
		body = errBody
		if status >= 500 || unexpected {
			// Worth retrying; the next request with the key settles the
			// reservation first.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if yerr := g.idem.Yield(cctx, key, reservationID); yerr != nil {
				g.log.Warn("yield idempotency key", "key", key, "err", yerr)
			}
			return err
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if err := g.idem.Complete(ctx, key, reservationID, status, raw); err != nil {
		return err
	}
	return c.Blob(status, echo.MIMEApplicationJSON, raw)
}
