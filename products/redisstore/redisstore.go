// Package redisstore is the products store on Redis (one server, a
// Sentinel-managed primary or a Redis Cluster): products, their stock and
// its reservations, moved by the Lua scripts in lua/.
package redisstore

import (
	"context"
	_ "embed" // the Lua scripts
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/products"
)

// Store keeps each product in one Redis hash, "<prefix>product:{<id>}",
// with the fields title, passenger_capacity, maximum_speed, in_stock and
// inc (the incarnation).
//
// Stock is moved by Lua scripts that touch one product at a time, and every
// script's keys share a hash slot ("{<id>}" is the hash tag). Each
// per-product step is atomic: it checks and changes in_stock in one script,
// so in_stock never goes below zero. A multi-line reservation runs one step
// per product in a single pipeline; when any step fails, the steps that
// succeeded are released (compensation), so a reservation is all or
// nothing. While that happens another order may briefly see the stock as
// taken and be refused: a conservative outcome that never oversells.
//
// Held quantities are recorded per product in "<prefix>hold:{<id>}" (field:
// reservation ID, value: quantity), which makes Release and Commit idempotent:
// stock returns only if the hold is still there, and holds are deleted with
// their product. A reservation record "<prefix>reservation:<id>" with its
// lines, indexed by deadline in the sorted set "<prefix>reservations", lets
// the recovery sweep find reservations whose process died before it could
// commit or release them.
//
// The sorted set "<prefix>product-ids" holds every product id (score 0), so
// that List pages in id order by range queries: a keyset listing that
// lists each product exactly once however the keyspace changes, which SCAN
// cannot promise (it may return a key twice when Redis shrinks its table).
// An id enters the index before its product is written and leaves it after
// its product is deleted, so the index never misses a product; an id left
// behind by a crash in between is skipped when listed.
//
// On one Redis server (or a Sentinel-managed primary) a call that spans
// several keys is one round trip: a pipeline runs in order on one
// connection, and Create and Delete are MULTI transactions, so a create
// and a delete of the same id cannot interleave. On a Redis Cluster the
// keys of one call live on different nodes: go-redis splits a pipeline per
// node and runs the parts concurrently, and a MULTI may only touch one
// slot. There, every step whose order matters is its own round trip (see
// clusterCreate and clusterDelete for the id index, Reserve for the
// reservation record, Commit), and steps that may run in any order (the
// per-product scripts of one reservation, GetMany) stay pipelined. Every
// script and every transaction still touches one slot.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	// cluster is true on a Redis Cluster: the keys of one call may live on
	// different nodes.
	cluster bool
}

var _ products.BulkStore = (*Store)(nil)

// New returns a store whose keys all start with prefix
// (for example "airship:"). rdb may be a client of one server, of a
// Sentinel-managed primary, or of a Redis Cluster (*redis.ClusterClient).
func New(rdb redis.UniversalClient, prefix string) *Store {
	_, cluster := rdb.(*redis.ClusterClient)
	return &Store{rdb: rdb, prefix: prefix, cluster: cluster}
}

var productFields = []string{"title", "passenger_capacity", "maximum_speed", "in_stock", "inc"}

// hmgetArgs are the arguments of a product's HMGET but for its key,
// boxed once: go-redis' HMGet would box each field name again on every
// call.
var hmgetArgs = func() []any {
	args := []any{"hmget", nil}
	for _, f := range productFields {
		args = append(args, f)
	}
	return args
}()

// hmgetProduct is the HMGET of a product's fields, for Process or a
// pipeline's Process.
func (s *Store) hmgetProduct(ctx context.Context, id string) *redis.SliceCmd {
	args := make([]any, len(hmgetArgs))
	copy(args, hmgetArgs)
	args[1] = s.productKey(id)
	return redis.NewSliceCmd(ctx, args...)
}

func (s *Store) productKey(id string) string { return s.prefix + "product:{" + id + "}" }
func (s *Store) holdKey(id string) string    { return s.prefix + "hold:{" + id + "}" }
func (s *Store) restockKey(l products.Line, id string) string {
	return s.prefix + "restocked:{" + l.ProductID + "}:" + id + ":" + l.Incarnation
}
func (s *Store) reservationKey(id string) string { return s.prefix + "reservation:" + id }
func (s *Store) reservationIndex() string        { return s.prefix + "reservations" }
func (s *Store) idIndex() string                 { return s.prefix + "product-ids" }
func (s *Store) schemaKey() string               { return s.prefix + "schema" }

var (
	//go:embed lua/create.lua
	createLua    string
	createScript = redis.NewScript(createLua)
	//go:embed lua/update.lua
	updateLua    string
	updateScript = redis.NewScript(updateLua)
	//go:embed lua/reserve.lua
	reserveLua    string
	reserveScript = redis.NewScript(reserveLua)
	//go:embed lua/release.lua
	releaseLua    string
	releaseScript = redis.NewScript(releaseLua)
	//go:embed lua/restock.lua
	restockLua    string
	restockScript = redis.NewScript(restockLua)
	//go:embed lua/upgrade.lua
	upgradeLua    string
	upgradeScript = redis.NewScript(upgradeLua)
)

// Get returns one product.
func (s *Store) Get(ctx context.Context, id string) (products.Product, error) {
	cmd := s.hmgetProduct(ctx, id)
	_ = s.rdb.Process(ctx, cmd)
	vals, err := cmd.Result()
	if err != nil {
		return products.Product{}, fmt.Errorf("get product %s: %w", id, redisErr(err))
	}
	p, ok, err := productFromValues(id, vals)
	if err != nil {
		return products.Product{}, fmt.Errorf("get product %s: %w", id, err)
	}
	if !ok {
		return products.Product{}, &products.NotFoundError{ID: id}
	}
	return p, nil
}

// GetMany returns the existing products among ids in one round trip.
func (s *Store) GetMany(ctx context.Context, ids []string) (map[string]products.Product, error) {
	out := make(map[string]products.Product, len(ids))
	switch len(ids) {
	case 0:
		return out, nil
	case 1: // most orders have one line: no pipeline needed
		p, err := s.Get(ctx, ids[0])
		var nf *products.NotFoundError
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
		cmds[i] = s.hmgetProduct(ctx, id)
		_ = pipe.Process(ctx, cmds[i])
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
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.productKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("product %s exists: %w", id, redisErr(err))
	}
	return n == 1, nil
}

// Create adds a product unless its id is taken. The id enters the index
// first: on one server in the same transaction, on a cluster as
// clusterCreate describes.
func (s *Store) Create(ctx context.Context, p products.Product) error {
	if p.Incarnation == "" {
		p.Incarnation = products.NewIncarnation()
	}
	if s.cluster {
		return s.clusterCreate(ctx, p)
	}
	var created *redis.Cmd
	err := s.execScript(ctx, createScript, s.rdb.TxPipeline, func(pipe redis.Pipeliner) {
		pipe.ZAdd(ctx, s.idIndex(), redis.Z{Member: p.ID})
		created = s.createCmd(ctx, pipe, p)
	})
	if err != nil {
		return fmt.Errorf("create product %s: %w", p.ID, err)
	}
	return createResult(p.ID, created)
}

// clusterCreate is Create on a cluster, where the index and the product
// live on different nodes: the id enters the index, then the product is
// written, then the id enters the index again. The last step closes the
// race with a Delete of the same id that removes it from the index after
// the first step (see clusterDelete); on a refusal it is not needed.
func (s *Store) clusterCreate(ctx context.Context, p products.Product) error {
	if err := s.rdb.ZAdd(ctx, s.idIndex(), redis.Z{Member: p.ID}).Err(); err != nil {
		return fmt.Errorf("create product %s: %w", p.ID, redisErr(err))
	}
	var created *redis.Cmd
	err := s.execScript(ctx, createScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
		created = s.createCmd(ctx, pipe, p)
	})
	if err != nil {
		return fmt.Errorf("create product %s: %w", p.ID, err)
	}
	if err := createResult(p.ID, created); err != nil {
		return err
	}
	if err := s.rdb.ZAdd(ctx, s.idIndex(), redis.Z{Member: p.ID}).Err(); err != nil {
		return fmt.Errorf("create product %s: index: %w", p.ID, redisErr(err))
	}
	return nil
}

func (s *Store) createCmd(ctx context.Context, pipe redis.Pipeliner, p products.Product) *redis.Cmd {
	return createScript.EvalSha(ctx, pipe, []string{s.productKey(p.ID)},
		p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.Incarnation)
}

func createResult(id string, created *redis.Cmd) error {
	if n, _ := created.Int(); n == 0 {
		return &products.ExistsError{ID: id}
	}
	return nil
}

// Update applies patch to an existing product.
func (s *Store) Update(ctx context.Context, id string, patch products.Patch) (products.Product, error) {
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
		return products.Product{}, &products.NotFoundError{ID: id}
	}
	if err != nil {
		return products.Product{}, fmt.Errorf("update product %s: %w", id, redisErr(err))
	}
	p, ok, err := productFromValues(id, res)
	if err != nil || !ok {
		return products.Product{}, fmt.Errorf("update product %s: unreadable hash: %v", id, err)
	}
	return p, nil
}

// Delete removes a product and any stock held on it, then its id from the
// index: on one server in one transaction, on a cluster as clusterDelete
// describes.
func (s *Store) Delete(ctx context.Context, id string) error {
	if s.cluster {
		return s.clusterDelete(ctx, id)
	}
	pipe := s.rdb.TxPipeline()
	del := pipe.Del(ctx, s.productKey(id))
	pipe.Del(ctx, s.holdKey(id))
	pipe.ZRem(ctx, s.idIndex(), id)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("delete product %s: %w", id, redisErr(err))
	}
	if del.Val() == 0 {
		return &products.NotFoundError{ID: id}
	}
	return nil
}

// clusterDelete is Delete on a cluster: the product and its holds go in
// one transaction (one slot), then the id leaves the index, then, if a
// Create of the same id wrote its product meanwhile, the id enters the
// index again. With clusterCreate's last step this leaves every product
// that exists in the index, whichever way the two interleave: a removal
// that comes after the create's last step is followed by this check,
// which sees the product.
func (s *Store) clusterDelete(ctx context.Context, id string) error {
	tx := s.rdb.TxPipeline()
	del := tx.Del(ctx, s.productKey(id))
	tx.Del(ctx, s.holdKey(id))
	if _, err := tx.Exec(ctx); err != nil {
		return fmt.Errorf("delete product %s: %w", id, redisErr(err))
	}
	if del.Val() == 0 {
		return &products.NotFoundError{ID: id}
	}
	if err := s.rdb.ZRem(ctx, s.idIndex(), id).Err(); err != nil {
		return fmt.Errorf("delete product %s: index: %w", id, redisErr(err))
	}
	n, err := s.rdb.Exists(ctx, s.productKey(id)).Result()
	if err == nil && n == 1 {
		err = s.rdb.ZAdd(ctx, s.idIndex(), redis.Z{Member: id}).Err()
	}
	if err != nil {
		return fmt.Errorf("delete product %s: index: %w", id, redisErr(err))
	}
	return nil
}

// List pages through the id index in id order: one range query for the
// page's ids, one round trip for their products. Ids whose product is gone
// (deleted since, or left by a crash) are skipped, so a page may hold
// fewer than limit products and still have a next one.
func (s *Store) List(ctx context.Context, cursor string, limit int) (products.Page, error) {
	after, err := products.ListStart(cursor, limit)
	if err != nil {
		return products.Page{}, err
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	// One id more than asked tells whether there is a next page.
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.idIndex(), Start: start, Stop: "+", ByLex: true, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return products.Page{}, fmt.Errorf("list products: %w", redisErr(err))
	}
	page := products.Page{Products: []products.Product{}}
	if len(ids) > limit {
		ids = ids[:limit]
		page.Next = products.NextCursor(ids[limit-1])
	}
	found, err := s.GetMany(ctx, ids)
	if err != nil {
		return products.Page{}, err
	}
	for _, id := range ids {
		if p, ok := found[id]; ok {
			page.Products = append(page.Products, p)
		}
	}
	return page, nil
}

// schemaVersion is the layout of the Redis data this code writes: 1 adds
// the id index and the incarnation of every product.
const schemaVersion = 1

// Upgrade brings products written by earlier versions of airship up to
// the current layout: it adds every product to the id index and gives an
// incarnation to every product that has none, in batches of a SCAN, then
// records the version so that later starts skip it. It is idempotent and
// safe while other processes serve requests.
func (s *Store) Upgrade(ctx context.Context) error {
	v, err := s.rdb.Get(ctx, s.schemaKey()).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis schema version: %w", redisErr(err))
	}
	if v >= schemaVersion {
		return nil
	}
	// SCAN walks one server: on a cluster, every master's share of the
	// keyspace.
	scan := s.upgradeNode
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		scan = func(ctx context.Context, _ redis.UniversalClient) error {
			return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
				return s.upgradeNode(ctx, node)
			})
		}
	}
	if err := scan(ctx, s.rdb); err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.schemaKey(), schemaVersion, 0).Err(); err != nil {
		return fmt.Errorf("redis schema version: %w", redisErr(err))
	}
	return nil
}

// upgradeNode upgrades the products of the server node answers for, in
// batches of a SCAN; the writes go through the store's client.
func (s *Store) upgradeNode(ctx context.Context, node redis.UniversalClient) error {
	match := s.prefix + "product:{*"
	keyPrefix := s.prefix + "product:{"
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return fmt.Errorf("upgrade products: %w", redisErr(err))
		}
		if len(keys) > 0 {
			members := make([]redis.Z, len(keys))
			for i, k := range keys {
				members[i] = redis.Z{Member: strings.TrimSuffix(strings.TrimPrefix(k, keyPrefix), "}")}
			}
			// The ids first, as Create does; on one server in the same
			// round trip.
			if s.cluster {
				if err := s.rdb.ZAdd(ctx, s.idIndex(), members...).Err(); err != nil {
					return fmt.Errorf("upgrade products: %w", redisErr(err))
				}
			}
			err := s.execScript(ctx, upgradeScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
				if !s.cluster {
					pipe.ZAdd(ctx, s.idIndex(), members...)
				}
				for _, k := range keys {
					upgradeScript.EvalSha(ctx, pipe, []string{k}, products.NewIncarnation())
				}
			})
			if err != nil {
				return fmt.Errorf("upgrade products: %w", err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Reserve takes stock for all lines, or none. See the type's documentation
// for why this is atomic per product and all-or-nothing per reservation.
func (s *Store) Reserve(ctx context.Context, r products.Reservation) (products.Taken, error) {
	lines := products.MergeLines(r.Lines)
	record, err := products.EncodeRecord(lines)
	if err != nil {
		return nil, fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	// The record goes first: if the process dies after any hold was taken,
	// the sweep can find it. On a cluster the record and the holds live on
	// different nodes, so the record is written in a round trip of its own.
	writeRecord := func(pipe redis.Pipeliner) {
		pipe.Set(ctx, s.reservationKey(r.ID), record, 0)
		pipe.ZAdd(ctx, s.reservationIndex(), redis.Z{Score: float64(r.Deadline.UnixMilli()), Member: r.ID})
	}
	if s.cluster {
		pipe := s.rdb.Pipeline()
		writeRecord(pipe)
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("reserve %s: %w", r.ID, redisErr(err))
		}
		writeRecord = func(redis.Pipeliner) {}
	}
	var cmds []*redis.Cmd
	err = s.execScript(ctx, reserveScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
		writeRecord(pipe)
		cmds = make([]*redis.Cmd, len(lines))
		for i, l := range lines {
			cmds[i] = reserveScript.EvalSha(ctx, pipe, []string{s.productKey(l.ProductID), s.holdKey(l.ProductID)},
				r.ID, l.Quantity, l.Incarnation)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	taken := make(products.Taken, len(lines))
	var failure error
	for i, l := range lines {
		reply, _ := cmds[i].Slice()
		code, inc := scriptReply(reply)
		if code == 1 {
			taken[l.ProductID] = inc
			continue
		}
		if code == -1 {
			failure = &products.NotFoundError{ID: l.ProductID}
		} else {
			failure = &products.OutOfStockError{ID: l.ProductID, Requested: l.Quantity, Available: -2 - code}
		}
		break
	}
	if failure == nil {
		return taken, nil
	}
	if err := s.Release(context.WithoutCancel(ctx), products.Reservation{ID: r.ID, Lines: lines}); err != nil {
		return nil, fmt.Errorf("reserve %s: undo after %v: %w", r.ID, failure, err)
	}
	return nil, failure
}

// scriptReply reads reserve.lua's reply: a code and, on success, the
// incarnation.
func scriptReply(reply []any) (code int64, incarnation string) {
	if len(reply) == 0 {
		return -1, ""
	}
	code, _ = reply[0].(int64)
	if len(reply) > 1 {
		incarnation, _ = reply[1].(string)
	}
	return code, incarnation
}

// Commit forgets a reservation whose order committed: its holds, then its
// record (on a cluster, in two round trips, so that a record is never
// gone while a hold of it is left).
func (s *Store) Commit(ctx context.Context, r products.Reservation) error {
	pipe := s.rdb.Pipeline()
	for _, l := range r.Lines {
		pipe.HDel(ctx, s.holdKey(l.ProductID), r.ID)
	}
	if s.cluster && len(r.Lines) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("commit reservation %s: %w", r.ID, redisErr(err))
		}
		pipe = s.rdb.Pipeline()
	}
	pipe.ZRem(ctx, s.reservationIndex(), r.ID)
	pipe.Del(ctx, s.reservationKey(r.ID))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("commit reservation %s: %w", r.ID, redisErr(err))
	}
	return nil
}

// Release returns the held stock of a reservation, then forgets it: two
// round trips, in this order on one server and on a cluster alike.
func (s *Store) Release(ctx context.Context, r products.Reservation) error {
	err := s.execScript(ctx, releaseScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
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
func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]products.Reservation, error) {
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
	out := make([]products.Reservation, 0, len(ids))
	for i, z := range ids {
		r := products.Reservation{ID: z.Member.(string), Deadline: time.UnixMilli(int64(z.Score))}
		if raw, err := cmds[i].Bytes(); err == nil {
			if r.Lines, err = products.DecodeRecord(raw); err != nil {
				return nil, fmt.Errorf("reservation %s: unreadable record: %w", r.ID, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Restock gives stock back to the products that still exist, each line to
// its own incarnation. A marker per product and call id, kept for a week,
// makes a repeated call a no-op.
func (s *Store) Restock(ctx context.Context, id string, lines []products.Line) error {
	ttl := products.RestockMemory.Milliseconds()
	err := s.execScript(ctx, restockScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
		for _, l := range products.MergeLines(lines) {
			restockScript.EvalSha(ctx, pipe, []string{s.productKey(l.ProductID), s.restockKey(l, id)},
				l.Quantity, ttl, l.Incarnation)
		}
	})
	if err != nil {
		return fmt.Errorf("restock %s: %w", id, err)
	}
	return nil
}

// execScript runs the pipeline that fill builds (newPipe is s.rdb.Pipeline
// or s.rdb.TxPipeline), whose commands call script by its SHA. If Redis
// does not know the script (first use, Redis restarted, or a replica
// promoted since it was loaded), it loads it (on every master of a
// cluster) and runs the pipeline again: every such pipeline here is
// idempotent. A script still unknown after a few loads (something keeps
// flushing them) makes the store unavailable for now, not broken.
func (s *Store) execScript(ctx context.Context, script *redis.Script, newPipe func() redis.Pipeliner, fill func(redis.Pipeliner)) error {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		pipe := newPipe()
		fill(pipe)
		_, err := pipe.Exec(ctx)
		if !isNoScript(err) {
			return redisErr(err)
		}
		if attempt == attempts {
			return fmt.Errorf("%w: %w", products.ErrUnavailable, err)
		}
		if err := script.Load(ctx, s.rdb).Err(); err != nil {
			return redisErr(err)
		}
	}
}

// unavailableReply reports whether a Redis error reply means the server
// cannot serve the command now (loading, failing over, resharding) rather
// than that the command is wrong.
func unavailableReply(msg string) bool {
	code, _, _ := strings.Cut(msg, " ")
	switch code {
	case "LOADING", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "READONLY", "MOVED", "ASK", "NOREPLICAS":
		return true
	}
	return false
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// productFromValues reads an HMGET reply in productFields order; ok is
// false when the hash does not exist.
func productFromValues(id string, vals []any) (p products.Product, ok bool, err error) {
	if len(vals) != len(productFields) || vals[0] == nil {
		return products.Product{}, false, nil
	}
	p.ID = id
	p.Title, _ = vals[0].(string)
	for i, dst := range [...]*int64{&p.PassengerCapacity, &p.MaximumSpeed, &p.InStock} {
		str, _ := vals[i+1].(string)
		if *dst, err = strconv.ParseInt(str, 10, 64); err != nil {
			return products.Product{}, false, fmt.Errorf("field %s: %w", productFields[i+1], err)
		}
	}
	p.Incarnation, _ = vals[4].(string)
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
		unavailableReply(err.Error()):
		return fmt.Errorf("%w: %w", products.ErrUnavailable, err)
	}
	return err
}

// ScriptNames names the Lua scripts of Store by their SHA1, the name
// a script is called by, so that metrics and traces can tell them apart.
func ScriptNames() map[string]string {
	return map[string]string{
		createScript.Hash(): "create", updateScript.Hash(): "update", reserveScript.Hash(): "reserve",
		releaseScript.Hash(): "release", restockScript.Hash(): "restock", upgradeScript.Hash(): "upgrade",
		loadScript.Hash(): "load", unloadScript.Hash(): "unload",
	}
}
