package orders

import (
	"time"

	"github.com/airshipltd/airship/internal/errs"
)

// Observer is told what the orders module did, for metrics. Its methods
// are called on the request path and by the recovery sweep: they must be
// cheap, must not block, and must be safe for concurrent use. A nil
// Config.Observer observes nothing.
type Observer interface {
	// OrderPlaced: an order was written and its stock taken.
	OrderPlaced()
	// OrderRefused: an order was refused because a product is missing
	// (errs.ProductNotFound) or short (errs.OutOfStock).
	OrderRefused(kind errs.Kind)
	// IdempotentReplay: a request with an Idempotency-Key got the outcome
	// of an earlier one (an order or a refusal) and placed nothing.
	IdempotentReplay()
	// ReservationSettled: the recovery sweep settled an expired
	// reservation; released is true when its stock went back (no order
	// claimed it) and false when an order had claimed it.
	ReservationSettled(released bool)
	// RestockReplayed: the recovery sweep gave back the stock of a deleted
	// or reduced order that its request had left pending.
	RestockReplayed()
	// RecoverySwept: one run of the recovery sweep ended after took, with
	// err nil when it finished its work.
	RecoverySwept(took time.Duration, err error)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) OrderPlaced()                       {}
func (nopObserver) OrderRefused(errs.Kind)             {}
func (nopObserver) IdempotentReplay()                  {}
func (nopObserver) ReservationSettled(bool)            {}
func (nopObserver) RestockReplayed()                   {}
func (nopObserver) RecoverySwept(time.Duration, error) {}

// observePlace tells the observer the outcome of placing an order.
func (s *Service) observePlace(err error) {
	if err == nil {
		s.obs.OrderPlaced()
		return
	}
	switch k := errs.Of(err); k {
	case errs.OutOfStock, errs.ProductNotFound:
		s.obs.OrderRefused(k)
	}
}
