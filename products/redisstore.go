package products

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps each product in one Redis hash, "<prefix>product:{<id>}",
// with the fields title, passenger_capacity, maximum_speed and in_stock.
//
// Stock is moved by Lua scripts that touch one product at a time, so every
// script's keys share a hash slot ("{<id>}" is the hash tag) and the store
// works on Redis Cluster. Each per-product step is atomic: it checks and
// changes in_stock in one script, so in_stock never goes below zero.
// A multi-line reservation runs one step per product in a single pipeline;
// when any step fails, the steps that succeeded are released (compensation),
// so a reservation is all or nothing. While that happens another order may
// briefly see the stock as taken and be refused: a conservative outcome
// that never oversells.
//
// Held quantities are recorded per product in "<prefix>hold:{<id>}" (field:
// reservation ID, value: quantity), which makes Release and Commit idempotent:
// stock returns only if the hold is still there. A reservation record
// "<prefix>reservation:<id>" with its lines, indexed by deadline in the sorted
// set "<prefix>reservations", lets the recovery sweep find reservations whose
// process died before it could commit or release them.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store whose keys all start with prefix
// (for example "airship:").
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix}
}

var productFields = []string{"title", "passenger_capacity", "maximum_speed", "in_stock"}

func (s *RedisStore) productKey(id string) string { return s.prefix + "product:{" + id + "}" }
func (s *RedisStore) holdKey(id string) string    { return s.prefix + "hold:{" + id + "}" }
func (s *RedisStore) restockKey(productID, id string) string {
	return s.prefix + "restocked:{" + productID + "}:" + id
}
func (s *RedisStore) reservationKey(id string) string { return s.prefix + "reservation:" + id }
func (s *RedisStore) reservationIndex() string        { return s.prefix + "reservations" }

// restockMarkerTTL is how long a Restock call is remembered; the recovery
// sweep replays pending restocks well within it.
const restockMarkerTTL = 7 * 24 * time.Hour

var (
	// createScript: KEYS[1] product; ARGV: title, capacity, speed, stock.
	createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'title', ARGV[1], 'passenger_capacity', ARGV[2], 'maximum_speed', ARGV[3], 'in_stock', ARGV[4])
return 1`)

	// updateScript: KEYS[1] product; ARGV: field, value, field, value...
	updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HMGET', KEYS[1], 'title', 'passenger_capacity', 'maximum_speed', 'in_stock')`)

	// reserveScript: KEYS[1] product, KEYS[2] hold; ARGV: reservation id, quantity.
	// Returns 1 when held, -1 when the product does not exist, and
	// -2 - available when there is not enough stock.
	reserveScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 1 end
local stock = redis.call('HGET', KEYS[1], 'in_stock')
if not stock then return -1 end
stock = tonumber(stock)
local q = tonumber(ARGV[2])
if stock < q then return -2 - stock end
redis.call('HINCRBY', KEYS[1], 'in_stock', -q)
redis.call('HSET', KEYS[2], ARGV[1], q)
return 1`)

	// releaseScript: KEYS[1] product, KEYS[2] hold; ARGV: reservation id.
	releaseScript = redis.NewScript(`
local q = redis.call('HGET', KEYS[2], ARGV[1])
if not q then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'in_stock', q) end
return 1`)

	// restockScript: KEYS[1] product, KEYS[2] marker; ARGV: quantity, marker ttl ms.
	restockScript = redis.NewScript(`
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[2]) == false then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'in_stock', ARGV[1]) end
return 1`)
)

// Get returns one product.
func (s *RedisStore) Get(ctx context.Context, id string) (Product, error) {
	vals, err := s.rdb.HMGet(ctx, s.productKey(id), productFields...).Result()
	if err != nil {
		return Product{}, fmt.Errorf("get product %s: %w", id, redisErr(err))
	}
	p, ok, err := productFromValues(id, vals)
	if err != nil {
		return Product{}, fmt.Errorf("get product %s: %w", id, err)
	}
	if !ok {
		return Product{}, &NotFoundError{ID: id}
	}
	return p, nil
}

// GetMany returns the existing products among ids in one round trip.
func (s *RedisStore) GetMany(ctx context.Context, ids []string) (map[string]Product, error) {
	out := make(map[string]Product, len(ids))
	switch len(ids) {
	case 0:
		return out, nil
	case 1: // most orders have one line: no pipeline needed
		p, err := s.Get(ctx, ids[0])
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out[p.ID] = p
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.productKey(id), productFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("get products: %w", redisErr(err))
	}
	for i, id := range ids {
		p, ok, err := productFromValues(id, cmds[i].Val())
		if err != nil {
			return nil, fmt.Errorf("get product %s: %w", id, err)
		}
		if ok {
			out[id] = p
		}
	}
	return out, nil
}

// Exists reports whether the product exists.
func (s *RedisStore) Exists(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.productKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("product %s exists: %w", id, redisErr(err))
	}
	return n == 1, nil
}

// Missing returns the ids that name no product, in one round trip.
func (s *RedisStore) Missing(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Exists(ctx, s.productKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("products exist: %w", redisErr(err))
	}
	var missing []string
	for i, id := range ids {
		if cmds[i].Val() == 0 {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// Create adds a product unless its id is taken.
func (s *RedisStore) Create(ctx context.Context, p Product) error {
	created, err := createScript.Run(ctx, s.rdb, []string{s.productKey(p.ID)},
		p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock).Int()
	if err != nil {
		return fmt.Errorf("create product %s: %w", p.ID, redisErr(err))
	}
	if created == 0 {
		return &ExistsError{ID: p.ID}
	}
	return nil
}

// Update applies patch to an existing product.
func (s *RedisStore) Update(ctx context.Context, id string, patch Patch) (Product, error) {
	var args []any
	if patch.Title != nil {
		args = append(args, "title", *patch.Title)
	}
	if patch.PassengerCapacity != nil {
		args = append(args, "passenger_capacity", *patch.PassengerCapacity)
	}
	if patch.MaximumSpeed != nil {
		args = append(args, "maximum_speed", *patch.MaximumSpeed)
	}
	if patch.InStock != nil {
		args = append(args, "in_stock", *patch.InStock)
	}
	res, err := updateScript.Run(ctx, s.rdb, []string{s.productKey(id)}, args...).Slice()
	if errors.Is(err, redis.Nil) {
		return Product{}, &NotFoundError{ID: id}
	}
	if err != nil {
		return Product{}, fmt.Errorf("update product %s: %w", id, redisErr(err))
	}
	p, ok, err := productFromValues(id, res)
	if err != nil || !ok {
		return Product{}, fmt.Errorf("update product %s: unreadable hash: %v", id, err)
	}
	return p, nil
}

// Delete removes a product and any stock held on it.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	pipe := s.rdb.TxPipeline()
	del := pipe.Del(ctx, s.productKey(id))
	pipe.Del(ctx, s.holdKey(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("delete product %s: %w", id, redisErr(err))
	}
	if del.Val() == 0 {
		return &NotFoundError{ID: id}
	}
	return nil
}

// List pages through the products with SCAN, never KEYS. A page always
// continues from the cursor SCAN itself returned, so the listing keeps
// SCAN's guarantee (every product that exists throughout it is listed at
// least once) even while keys are added and the keyspace is rehashed. When
// a SCAN batch holds more than fits on the page, the ids left over travel
// in the page's cursor: "<scan cursor>" or "<scan cursor>:<id>,<id>,...".
func (s *RedisStore) List(ctx context.Context, cursor string, limit int) (Page, error) {
	scanCursor, ids, err := parseScanCursor(cursor)
	if err != nil {
		return Page{}, err
	}
	if len(ids) >= limit {
		return s.page(ctx, ids[:limit], formatScanCursor(scanCursor, ids[limit:]))
	}
	if cursor != "" && scanCursor == 0 {
		return s.page(ctx, ids, "") // only the leftovers of the last batch
	}
	match := s.prefix + "product:{*"
	count := int64(max(limit/4, 10))
	keyPrefix := s.prefix + "product:{"
	for {
		batch, next, err := s.rdb.Scan(ctx, scanCursor, match, count).Result()
		if err != nil {
			return Page{}, fmt.Errorf("list products: %w", redisErr(err))
		}
		for _, k := range batch {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(k, keyPrefix), "}"))
		}
		scanCursor = next
		switch {
		case len(ids) > limit:
			return s.page(ctx, ids[:limit], formatScanCursor(next, ids[limit:]))
		case next == 0:
			return s.page(ctx, ids, "")
		case len(ids) == limit:
			return s.page(ctx, ids, formatScanCursor(next, nil))
		}
	}
}

func (s *RedisStore) page(ctx context.Context, ids []string, next string) (Page, error) {
	found, err := s.GetMany(ctx, ids)
	if err != nil {
		return Page{}, err
	}
	page := Page{Products: make([]Product, 0, len(found)), Next: next}
	for _, id := range ids {
		if p, ok := found[id]; ok { // deleted since the scan otherwise
			page.Products = append(page.Products, p)
		}
	}
	return page, nil
}

func formatScanCursor(cursor uint64, leftover []string) string {
	c := strconv.FormatUint(cursor, 10)
	if len(leftover) > 0 {
		c += ":" + strings.Join(leftover, ",")
	}
	return c
}

func parseScanCursor(c string) (uint64, []string, error) {
	if c == "" {
		return 0, nil, nil
	}
	cur, rest, hasIDs := strings.Cut(c, ":")
	n, err := strconv.ParseUint(cur, 10, 64)
	if err != nil {
		return 0, nil, ErrBadCursor
	}
	if !hasIDs {
		if n == 0 {
			return 0, nil, ErrBadCursor // SCAN's end is never a next page
		}
		return n, nil, nil
	}
	ids := strings.Split(rest, ",")
	for _, id := range ids {
		if !ValidID(id) {
			return 0, nil, ErrBadCursor
		}
	}
	return n, ids, nil
}

// Reserve takes stock for all lines, or none. See the type's documentation
// for why this is atomic per product and all-or-nothing per reservation.
func (s *RedisStore) Reserve(ctx context.Context, r Reservation) error {
	lines := MergeLines(r.Lines)
	record, err := json.Marshal(recordOf(lines))
	if err != nil {
		return fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	var cmds []*redis.Cmd
	err = s.execScript(ctx, reserveScript, func(pipe redis.Pipeliner) {
		// The record goes first: if the process dies after any hold was
		// taken, the sweep can find it.
		pipe.Set(ctx, s.reservationKey(r.ID), record, 0)
		pipe.ZAdd(ctx, s.reservationIndex(), redis.Z{Score: float64(r.Deadline.UnixMilli()), Member: r.ID})
		cmds = make([]*redis.Cmd, len(lines))
		for i, l := range lines {
			cmds[i] = reserveScript.EvalSha(ctx, pipe, []string{s.productKey(l.ProductID), s.holdKey(l.ProductID)}, r.ID, l.Quantity)
		}
	})
	if err != nil {
		return fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	var failure error
	for i, l := range lines {
		n, _ := cmds[i].Int64()
		if n == 1 {
			continue
		}
		if n == -1 {
			failure = &NotFoundError{ID: l.ProductID}
		} else {
			failure = &OutOfStockError{ID: l.ProductID, Requested: l.Quantity, Available: -2 - n}
		}
		break
	}
	if failure == nil {
		return nil
	}
	if err := s.Release(context.WithoutCancel(ctx), Reservation{ID: r.ID, Lines: lines}); err != nil {
		return fmt.Errorf("reserve %s: undo after %v: %w", r.ID, failure, err)
	}
	return failure
}

// Commit forgets a reservation whose order committed.
func (s *RedisStore) Commit(ctx context.Context, r Reservation) error {
	pipe := s.rdb.Pipeline()
	for _, l := range r.Lines {
		pipe.HDel(ctx, s.holdKey(l.ProductID), r.ID)
	}
	pipe.ZRem(ctx, s.reservationIndex(), r.ID)
	pipe.Del(ctx, s.reservationKey(r.ID))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("commit reservation %s: %w", r.ID, redisErr(err))
	}
	return nil
}

// Release returns the held stock of a reservation and forgets it.
func (s *RedisStore) Release(ctx context.Context, r Reservation) error {
	err := s.execScript(ctx, releaseScript, func(pipe redis.Pipeliner) {
		for _, l := range r.Lines {
			releaseScript.EvalSha(ctx, pipe, []string{s.productKey(l.ProductID), s.holdKey(l.ProductID)}, r.ID)
		}
	})
	if err != nil {
		return fmt.Errorf("release reservation %s: %w", r.ID, err)
	}
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, s.reservationIndex(), r.ID)
	pipe.Del(ctx, s.reservationKey(r.ID))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("release reservation %s: %w", r.ID, redisErr(err))
	}
	return nil
}

// Expired returns reservations whose deadline has passed.
func (s *RedisStore) Expired(ctx context.Context, now time.Time, limit int) ([]Reservation, error) {
	ids, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: s.reservationIndex(), Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10),
		ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("expired reservations: %w", redisErr(err))
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, z := range ids {
		cmds[i] = pipe.Get(ctx, s.reservationKey(z.Member.(string)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("expired reservations: %w", redisErr(err))
	}
	out := make([]Reservation, 0, len(ids))
	for i, z := range ids {
		r := Reservation{ID: z.Member.(string), Deadline: time.UnixMilli(int64(z.Score))}
		var rec []reservationLine
		if raw, err := cmds[i].Bytes(); err == nil {
			if err := json.Unmarshal(raw, &rec); err != nil {
				return nil, fmt.Errorf("reservation %s: unreadable record: %w", r.ID, err)
			}
		}
		for _, l := range rec {
			r.Lines = append(r.Lines, Line(l))
		}
		out = append(out, r)
	}
	return out, nil
}

// Restock gives stock back to the products that still exist. A marker per
// product and call id, kept for a week, makes a repeated call a no-op.
func (s *RedisStore) Restock(ctx context.Context, id string, lines []Line) error {
	ttl := restockMarkerTTL.Milliseconds()
	err := s.execScript(ctx, restockScript, func(pipe redis.Pipeliner) {
		for _, l := range MergeLines(lines) {
			restockScript.EvalSha(ctx, pipe, []string{s.productKey(l.ProductID), s.restockKey(l.ProductID, id)}, l.Quantity, ttl)
		}
	})
	if err != nil {
		return fmt.Errorf("restock %s: %w", id, err)
	}
	return nil
}

// execScript runs the pipeline that fill builds, whose commands call script
// by its SHA. If Redis does not know the script (first use, or Redis
// restarted), it loads it and runs the pipeline once more: every such
// pipeline here is idempotent.
func (s *RedisStore) execScript(ctx context.Context, script *redis.Script, fill func(redis.Pipeliner)) error {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		fill(pipe)
		_, err := pipe.Exec(ctx)
		if !isNoScript(err) || attempt > 0 {
			return redisErr(err)
		}
		if err := script.Load(ctx, s.rdb).Err(); err != nil {
			return redisErr(err)
		}
	}
}

type reservationLine struct {
	ProductID string `json:"p"`
	Quantity  int64  `json:"q"`
}

func recordOf(lines []Line) []reservationLine {
	out := make([]reservationLine, len(lines))
	for i, l := range lines {
		out[i] = reservationLine(l)
	}
	return out
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// productFromValues reads an HMGET reply in productFields order; ok is
// false when the hash does not exist.
func productFromValues(id string, vals []any) (p Product, ok bool, err error) {
	if len(vals) != len(productFields) || vals[0] == nil {
		return Product{}, false, nil
	}
	p.ID = id
	p.Title, _ = vals[0].(string)
	for i, dst := range [...]*int64{&p.PassengerCapacity, &p.MaximumSpeed, &p.InStock} {
		str, _ := vals[i+1].(string)
		if *dst, err = strconv.ParseInt(str, 10, 64); err != nil {
			return Product{}, false, fmt.Errorf("field %s: %w", productFields[i+1], err)
		}
	}
	return p, true, nil
}

// redisErr marks errors that mean Redis could not be reached as ErrUnavailable.
func redisErr(err error) error {
	if err == nil {
		return nil
	}
	var netErr net.Error
	switch {
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed), errors.Is(err, io.EOF),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr),
		strings.HasPrefix(err.Error(), "LOADING"), strings.HasPrefix(err.Error(), "CLUSTERDOWN"),
		strings.HasPrefix(err.Error(), "MASTERDOWN"), strings.HasPrefix(err.Error(), "TRYAGAIN"):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
