package orders

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/periodic"
	"github.com/airshipltd/airship/products"
)

// Stock is what the orders module needs from the products module.
// The products stores (products/redisstore, products/sqlitestore) provide it.
type Stock interface {
	Reserve(ctx context.Context, r products.Reservation) (products.Taken, error)
	Commit(ctx context.Context, r products.Reservation) error
	Release(ctx context.Context, r products.Reservation) error
	Expired(ctx context.Context, now time.Time, limit int) ([]products.Reservation, error)
	Restock(ctx context.Context, id string, lines []products.Line) error
}

// Taker is a stock that can take an order's stock outright (all or
// nothing, failing as Reserve does) without recording a reservation: a
// stock bound to a Transactor's transaction may offer it, since the
// transaction's rollback gives the stock back and its commit keeps the
// order. Placing an order in such a transaction then writes no
// reservation only to forget it before the commit.
type Taker interface {
	Take(ctx context.Context, lines []products.Line) (products.Taken, error)
}

// Service places, changes and deletes orders, keeping stock in step.
//
// Placing an order is a reservation followed by a commit:
//
//  1. Reserve the stock of every line (all or nothing). This is also the
//     existence check: one round trip tells which product is missing or
//     short, atomically with taking the stock.
//  2. Write the order and claim the reservation in one transaction.
//  3. Commit the reservation (forget the holds; the stock stays taken),
//     before answering or, with Config.CommitInBackground, after.
//
// When the orders store shares one database with the stock (the embedded
// store, given as Config.Tx), the three steps run in one transaction
// instead, and a stock that is a Taker takes the stock without recording
// the reservation that the same transaction would forget.
//
// If step 2 fails, Settle decides the reservation: void (the order did not
// commit, so the stock is released) or committed (the commit reply was lost
// but the order is there). If the process dies between steps, the recovery
// sweep (Recover) does the same for reservations past their deadline, and
// replays the restocks that deleted or reduced orders recorded. Because
// Settle marks a reservation void in the orders store, an order can never
// commit on stock that was already given back.
type Service struct {
	orders Store
	stock  Stock
	cfg    Config
	obs    Observer
	log    *slog.Logger
	now    func() time.Time
	// background counts the commits running after their Place returned.
	background sync.WaitGroup
}

// Config tunes a Service.
type Config struct {
	// HoldFor is how long a reservation may stay unsettled before the
	// recovery sweep settles it; it must exceed the longest request.
	HoldFor time.Duration
	// KeyTTL is how long an idempotency key is remembered (default a
	// day); KeyStaleAfter is how long its request may run before a retry
	// with the key settles it and runs again (default HoldFor).
	KeyTTL, KeyStaleAfter time.Duration
	// Tx, when set, runs changes to orders and stock in one transaction:
	// for stores that share one database (sqlstore.Store.Transactor).
	Tx Transactor
	// Changed, when set, is called after an order change committed: the
	// event relay publishes the change's event at once instead of at its
	// next poll.
	Changed func()
	// CommitInBackground, when set, commits a placed order's reservation
	// (forgets its holds) after Place returns rather than before: the
	// answer does not depend on it, and when the stock is kept by another
	// process each call is a network round trip. If the process stops
	// first, the recovery sweep commits it (the order claimed it). Wait
	// waits for the commits in flight.
	CommitInBackground bool
	// Observer, when set, is told of orders placed and refused, replays
	// and the recovery sweep's work (metrics).
	Observer Observer
}

// NewService returns a Service on the orders store and the stock.
func NewService(orders Store, stock Stock, log *slog.Logger, cfg Config) *Service {
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = 24 * time.Hour
	}
	if cfg.KeyStaleAfter <= 0 {
		cfg.KeyStaleAfter = cfg.HoldFor
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	return &Service{orders: orders, stock: stock, cfg: cfg, obs: obs, log: log, now: time.Now}
}

// Transactor runs changes to orders and stock in one transaction: fn gets
// an orders store and a stock bound to it, committed together if fn
// returns nil and rolled back together otherwise.
type Transactor interface {
	InTx(ctx context.Context, fn func(orders Store, stock Stock) error) error
}

// settleTimeout bounds the clean-up work done after a request failed.
const settleTimeout = 5 * time.Second

// maxConflictRetries bounds how often a change is recomputed when the order
// changed under it.
const maxConflictRetries = 3

// Place reserves the stock of an order and writes it.
func (s *Service) Place(ctx context.Context, lines []NewLine) (Order, error) {
	return s.PlaceAs(ctx, uuid.NewString(), lines)
}

// PlaceAs is Place under a reservation ID chosen by the caller, whose
// outcome Settle tells later (see PlaceOnce).
func (s *Service) PlaceAs(ctx context.Context, reservationID string, lines []NewLine) (Order, error) {
	// The module holds every caller to its rules, not only the gateway.
	if err := errs.Problems(NewLinesProblems(lines)); err != nil {
		return Order{}, err
	}
	o, err := s.placeAs(ctx, reservationID, lines)
	s.observePlace(err)
	return o, err
}

func (s *Service) placeAs(ctx context.Context, reservationID string, lines []NewLine) (Order, error) {
	if s.cfg.Tx != nil {
		var o Order
		err := s.cfg.Tx.InTx(ctx, func(orders Store, stock Stock) error {
			r := s.reservationAs(reservationID, stockLines(lines))
			if t, ok := stock.(Taker); ok {
				taken, err := t.Take(ctx, r.Lines)
				if err != nil {
					return err
				}
				o, err = orders.Create(ctx, r.ID, withIncarnations(lines, taken))
				return err
			}
			taken, err := stock.Reserve(ctx, r)
			if err != nil {
				return err
			}
			if o, err = orders.Create(ctx, r.ID, withIncarnations(lines, taken)); err != nil {
				return err
			}
			return stock.Commit(ctx, r)
		})
		if err == nil {
			s.changed()
		}
		return o, err
	}
	r := s.reservationAs(reservationID, stockLines(lines))
	taken, err := s.stock.Reserve(ctx, r)
	if err != nil {
		return Order{}, err
	}
	o, err := s.orders.Create(ctx, r.ID, withIncarnations(lines, taken))
	if err != nil {
		return s.settleAfter(ctx, r, err)
	}
	s.changed()
	if s.cfg.CommitInBackground {
		s.background.Go(func() { s.commit(ctx, r) })
	} else {
		s.commit(ctx, r)
	}
	return o, nil
}

// Wait waits until the commits that run in the background are done (see
// Config.CommitInBackground).
func (s *Service) Wait() { s.background.Wait() }

// Get returns one order.
func (s *Service) Get(ctx context.Context, id int64) (Order, error) { return s.orders.Get(ctx, id) }

// List returns up to limit orders with id > after, oldest first.
func (s *Service) List(ctx context.Context, after int64, limit int) ([]Order, error) {
	return s.orders.List(ctx, after, limit)
}

// Update changes the price and quantity of existing lines; stock moves by
// the quantity differences. An update that changes nothing (every line
// named keeps its price and quantity) writes nothing and returns the
// order as it is.
func (s *Service) Update(ctx context.Context, id int64, updates []LineUpdate) (Order, error) {
	if err := errs.Problems(UpdatesProblems(updates)); err != nil {
		return Order{}, err
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.orders.Get(ctx, id)
		if err != nil {
			return Order{}, err
		}
		next, err := ApplyUpdates(cur, updates)
		if err != nil {
			return Order{}, err
		}
		if len(ChangedLines(cur.Lines, next.Lines)) == 0 {
			// Every line keeps its price and quantity: nothing to write,
			// no updated_at to move, no order_updated event.
			return cur, nil
		}
		take, give := stockDelta(cur.Lines, next.Lines)
		c := Change{Expect: cur.Lines}
		var r products.Reservation
		if len(take) > 0 {
			r = s.reservation(take)
			if _, err := s.stock.Reserve(ctx, r); err != nil {
				return Order{}, err
			}
			c.ReservationID = r.ID
		}
		if give = givenBack(give); len(give) > 0 {
			c.RestockID, c.Restock = uuid.NewString(), give
		}
		o, err := s.orders.Update(ctx, id, updates, c)
		if errors.Is(err, ErrConflict) && attempt < maxConflictRetries {
			if r.ID != "" {
				s.release(ctx, r)
			}
			continue
		}
		if err != nil {
			if r.ID == "" {
				return Order{}, err
			}
			if _, err := s.settleAfter(ctx, r, err); err != nil {
				return Order{}, err
			}
			return s.orders.Get(ctx, id)
		}
		s.changed()
		if r.ID != "" {
			s.commit(ctx, r)
		}
		if c.RestockID != "" {
			s.restock(ctx, c.RestockID, give)
		}
		return o, nil
	}
}

// Delete removes an order and gives its stock back to the products that
// still exist.
func (s *Service) Delete(ctx context.Context, id int64) error {
	for attempt := 0; ; attempt++ {
		cur, err := s.orders.Get(ctx, id)
		if err != nil {
			return err
		}
		give := givenBack(stockLines(newLines(cur.Lines)))
		c := Change{Expect: cur.Lines, RestockID: uuid.NewString(), Restock: give}
		err = s.orders.Delete(ctx, id, c)
		if errors.Is(err, ErrConflict) && attempt < maxConflictRetries {
			continue
		}
		if err != nil {
			return err
		}
		s.changed()
		s.restock(ctx, c.RestockID, give)
		return nil
	}
}

// Recover settles reservations past their deadline and replays pending
// restocks. It is safe to run at any time, from any number of replicas:
// every step is idempotent and the orders store decides each outcome once.
func (s *Service) Recover(ctx context.Context) error {
	began := time.Now()
	err := s.recover(ctx)
	s.obs.RecoverySwept(time.Since(began), err)
	return err
}

func (s *Service) recover(ctx context.Context) error {
	const batch = 100
	now := s.now()
	for {
		expired, err := s.stock.Expired(ctx, now, batch)
		if err != nil {
			return err
		}
		for _, r := range expired {
			_, committed, err := s.orders.Settle(ctx, r.ID)
			if err != nil {
				return err
			}
			if committed {
				err = s.stock.Commit(ctx, r)
			} else {
				err = s.stock.Release(ctx, r)
			}
			if err != nil {
				return err
			}
			s.obs.ReservationSettled(!committed)
			s.log.InfoContext(ctx, "settled reservation", "reservation", r.ID, "committed", committed)
		}
		if len(expired) < batch {
			break
		}
	}
	for {
		pending, err := s.orders.PendingRestocks(ctx, now.Add(-s.cfg.HoldFor), batch)
		if err != nil {
			return err
		}
		for _, p := range pending {
			if err := s.stock.Restock(ctx, p.ID, p.Lines); err != nil {
				return err
			}
			if err := s.orders.RestockDone(ctx, p.ID); err != nil {
				return err
			}
			s.obs.RestockReplayed()
			s.log.InfoContext(ctx, "replayed restock", "restock", p.ID)
		}
		if len(pending) < batch {
			return nil
		}
	}
}

// Run does the service's background work until ctx ends: the recovery
// sweep (Recover) every recoverEvery, and the purge of expired
// idempotency keys every hour.
func (s *Service) Run(ctx context.Context, recoverEvery time.Duration) {
	var wg sync.WaitGroup
	wg.Go(func() { periodic.Every(ctx, recoverEvery, "recovery sweep", s.Recover, s.log) })
	periodic.Every(ctx, time.Hour, "purge idempotency keys", s.PurgeKeys, s.log)
	wg.Wait()
}

// changed tells Config.Changed that an order change committed.
func (s *Service) changed() {
	if s.cfg.Changed != nil {
		s.cfg.Changed()
	}
}

func (s *Service) reservation(lines []products.Line) products.Reservation {
	return s.reservationAs(uuid.NewString(), lines)
}

func (s *Service) reservationAs(id string, lines []products.Line) products.Reservation {
	return products.Reservation{ID: id, Lines: lines, Deadline: s.now().Add(s.cfg.HoldFor)}
}

// settleAfter handles a failed write after a reservation: it settles the
// reservation so that its stock is released if and only if no order
// claimed it. When the settlement itself fails the sweep finishes it.
func (s *Service) settleAfter(ctx context.Context, r products.Reservation, cause error) (Order, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	orderID, committed, err := s.orders.Settle(ctx, r.ID)
	switch {
	case err != nil:
		s.log.WarnContext(ctx, "reservation left to the recovery sweep", "reservation", r.ID, "err", err)
		return Order{}, cause
	case committed:
		// The write committed but its reply was lost.
		s.commit(ctx, r)
		return s.orders.Get(ctx, orderID)
	default:
		s.release(ctx, r)
		return Order{}, cause
	}
}

func (s *Service) commit(ctx context.Context, r products.Reservation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := s.stock.Commit(ctx, r); err != nil {
		s.log.WarnContext(ctx, "commit reservation; the recovery sweep will retry", "reservation", r.ID, "err", err)
	}
}

func (s *Service) release(ctx context.Context, r products.Reservation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := s.stock.Release(ctx, r); err != nil {
		s.log.WarnContext(ctx, "release reservation; the recovery sweep will retry", "reservation", r.ID, "err", err)
	}
}

func (s *Service) restock(ctx context.Context, id string, lines []products.Line) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := s.stock.Restock(ctx, id, lines); err != nil {
		s.log.WarnContext(ctx, "restock; the recovery sweep will retry", "restock", id, "err", err)
		return
	}
	if err := s.orders.RestockDone(ctx, id); err != nil {
		s.log.WarnContext(ctx, "restock done; the recovery sweep will retry", "restock", id, "err", err)
	}
}

// ChangedLines returns the lines of after (the lines of before with
// updates applied, in the same order) whose price or quantity, as
// stored, differ from before's.
func ChangedLines(before, after []Line) []Line {
	var out []Line
	for i, l := range after {
		if l.Quantity != before[i].Quantity || l.Price.StringFixed(2) != before[i].Price.StringFixed(2) {
			out = append(out, l)
		}
	}
	return out
}

// stockDelta returns, per product incarnation, the stock an update takes
// and gives back.
func stockDelta(before, after []Line) (take, give []products.Line) {
	type key struct{ id, incarnation string }
	diff := make(map[key]int64)
	var order []key
	for i := range before {
		k := key{before[i].ProductID, before[i].Incarnation}
		if _, seen := diff[k]; !seen {
			order = append(order, k)
		}
		diff[k] += after[i].Quantity - before[i].Quantity
	}
	for _, k := range order {
		switch d := diff[k]; {
		case d > 0:
			take = append(take, products.Line{ProductID: k.id, Quantity: d, Incarnation: k.incarnation})
		case d < 0:
			give = append(give, products.Line{ProductID: k.id, Quantity: -d, Incarnation: k.incarnation})
		}
	}
	return take, give
}

// givenBack returns the lines of stock to give back that can go back: a
// line kept from the old shop may name an id that no product can have, or
// a quantity below 1 (its checks allowed them), and gives nothing back.
// The products module refuses such lines.
func givenBack(lines []products.Line) []products.Line {
	out := lines[:0:0]
	for _, l := range lines {
		if l.Quantity >= 1 && products.ValidID(l.ProductID) && products.IncarnationProblem(l.Incarnation) == "" {
			out = append(out, l)
		}
	}
	return out
}

func newLines(lines []Line) []NewLine {
	out := make([]NewLine, len(lines))
	for i, l := range lines {
		out[i] = NewLine{ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity, Incarnation: l.Incarnation}
	}
	return out
}
