package products

// Loading products in bulk from outside the API: the old shop's Redis
// hashes (airship import-legacy) and airship dumps (airship import).

import (
	"context"
	"database/sql"
	_ "embed" // the Lua script
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
)

// Loaded is what Load did with one product.
type Loaded int

const (
	// Created: the product was not there and was written.
	Created Loaded = iota + 1
	// Equal: a product with the same fields is there; nothing changed.
	Equal
	// Conflicting: a product with other fields is there and was left as
	// it is.
	Conflicting
	// Overwritten: a product with other fields was there; its fields were
	// replaced and it kept its incarnation.
	Overwritten
)

// LoadMode says what Load may write.
type LoadMode struct {
	// Overwrite replaces the fields of a conflicting product.
	Overwrite bool
	// DryRun writes nothing and reports what Load would do.
	DryRun bool
}

// scriptArgs are the mode and dry arguments of load.lua.
func (m LoadMode) scriptArgs() (mode, dry string) {
	mode, dry = "create", "0"
	if m.Overwrite {
		mode = "overwrite"
	}
	if m.DryRun {
		dry = "1"
	}
	return mode, dry
}

// Matches reports whether there, a product a store holds, is p as Load
// and Unload compare them: the same title, passenger capacity, maximum
// speed and stock, and the same incarnation when p has one.
func (p Product) Matches(there Product) bool {
	return there.Title == p.Title && there.PassengerCapacity == p.PassengerCapacity &&
		there.MaximumSpeed == p.MaximumSpeed && there.InStock == p.InStock &&
		(p.Incarnation == "" || there.Incarnation == p.Incarnation)
}

// IncarnationOrNew returns p's incarnation, or a new one when it has none:
// the incarnation Load gives a product it creates.
func (p Product) IncarnationOrNew() string {
	if p.Incarnation != "" {
		return p.Incarnation
	}
	return NewIncarnation()
}

var (
	//go:embed lua/load.lua
	loadLua    string
	loadScript = redis.NewScript(loadLua)
)

// Load writes the products of a batch that are not there, each whole or
// not at all, in one round trip, and reports what it did with each (see
// Loaded). A product without an incarnation gets a new one when created.
// The products must be valid (Product.Problems) and their ids distinct.
func (s *RedisStore) Load(ctx context.Context, ps []Product, mode LoadMode) ([]Loaded, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	var cmds []*redis.Cmd
	how, dry := mode.scriptArgs()
	// Ids enter the index before their products, as in Create: in the same
	// pipeline on one server, in a round trip of their own on a cluster,
	// where a pipeline's commands for different nodes run in no order.
	ids := make([]redis.Z, len(ps))
	for i, p := range ps {
		ids[i] = redis.Z{Member: p.ID}
	}
	if !mode.DryRun && s.cluster {
		if err := s.rdb.ZAdd(ctx, s.idIndex(), ids...).Err(); err != nil {
			return nil, fmt.Errorf("load %d products: %w", len(ps), redisErr(err))
		}
	}
	err := s.execScript(ctx, loadScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
		if !mode.DryRun && !s.cluster {
			pipe.ZAdd(ctx, s.idIndex(), ids...)
		}
		cmds = make([]*redis.Cmd, len(ps))
		for i, p := range ps {
			compare := "0"
			if p.Incarnation != "" {
				compare = "1"
			}
			cmds[i] = loadScript.EvalSha(ctx, pipe, []string{s.productKey(p.ID)},
				p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.IncarnationOrNew(), how, compare, dry)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load %d products: %w", len(ps), err)
	}
	out := make([]Loaded, len(ps))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil || n < int(Created) || n > int(Overwritten) {
			return nil, fmt.Errorf("load product %s: reply %v, %v", ps[i].ID, c.Val(), err)
		}
		out[i] = Loaded(n)
	}
	return out, nil
}

var (
	//go:embed lua/unload.lua
	unloadLua    string
	unloadScript = redis.NewScript(unloadLua)
)

// Unloaded is what Unload did with one product.
type Unloaded int

const (
	// Removed: the product was as loaded and was deleted.
	Removed Unloaded = iota + 1
	// Absent: no product has the id.
	Absent
	// Kept: the product changed since it was loaded (its fields, its
	// stock, its incarnation) or holds stock for an order in flight, and
	// was left as it is.
	Kept
)

// Unload deletes the products of ps that are still as Load created them
// (the same fields, and the same incarnation when p has one) and hold no
// stock for an order in flight, and reports what it did with each: what
// airship import undoes when a load fails. A product that a client
// changed or ordered since, or deleted and created again, stays.
func (s *RedisStore) Unload(ctx context.Context, ps []Product) ([]Unloaded, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(ps))
	err := s.execScript(ctx, unloadScript, s.rdb.Pipeline, func(pipe redis.Pipeliner) {
		for i, p := range ps {
			cmds[i] = unloadScript.EvalSha(ctx, pipe, []string{s.productKey(p.ID), s.holdKey(p.ID)},
				p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.Incarnation)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("unload %d products: %w", len(ps), err)
	}
	out := make([]Unloaded, len(ps))
	var gone []any
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil || n < int(Removed) || n > int(Kept) {
			return nil, fmt.Errorf("unload product %s: reply %v, %w", ps[i].ID, c.Val(), redisErr(err))
		}
		if out[i] = Unloaded(n); out[i] == Removed {
			gone = append(gone, ps[i].ID)
		}
	}
	if len(gone) == 0 {
		return out, nil
	}
	// The ids leave the index after their products, as in Delete; one
	// created again meanwhile enters it again.
	if err := s.rdb.ZRem(ctx, s.idIndex(), gone...).Err(); err != nil {
		return nil, fmt.Errorf("unload %d products: index: %w", len(gone), redisErr(err))
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(gone))
	for i, id := range gone {
		exists[i] = pipe.Exists(ctx, s.productKey(id.(string)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("unload %d products: %w", len(gone), redisErr(err))
	}
	var back []redis.Z
	for i, e := range exists {
		if e.Val() == 1 {
			back = append(back, redis.Z{Member: gone[i]})
		}
	}
	if len(back) > 0 {
		if err := s.rdb.ZAdd(ctx, s.idIndex(), back...).Err(); err != nil {
			return nil, fmt.Errorf("unload %d products: index: %w", len(gone), redisErr(err))
		}
	}
	return out, nil
}

const sqlOverwrite = `UPDATE products SET title = $2, passenger_capacity = $3, maximum_speed = $4, in_stock = $5
WHERE id = $1`

// Load writes the products of a batch that are not there, in one
// transaction (or the one the store is bound to), and reports what it did
// with each (see Loaded): one prepared INSERT a product, and a read of
// the product that is there only when the id is taken. A product without
// an incarnation gets a new one when created. The products must be valid
// and their ids distinct.
func (s *SQLStore) Load(ctx context.Context, ps []Product, mode LoadMode) ([]Loaded, error) {
	out := make([]Loaded, len(ps))
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		insert, err := tx.PrepareContext(ctx, sqlCreate)
		if err != nil {
			return fmt.Errorf("load products: %w", err)
		}
		defer insert.Close()
		for i, p := range ps {
			if err := loadOne(ctx, tx, insert, p, mode, &out[i]); err != nil {
				return fmt.Errorf("load product %s: %w", p.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func loadOne(ctx context.Context, tx *sqlx.Tx, insert *sql.Stmt, p Product, mode LoadMode, out *Loaded) error {
	if !mode.DryRun {
		res, err := insert.ExecContext(ctx, p.ID, p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.IncarnationOrNew())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			*out = Created
			return err
		}
	}
	var there Product
	err := tx.GetContext(ctx, &there, sqlGetProduct, p.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows): // a dry run
		*out = Created
		return nil
	case err != nil:
		return err
	case p.Matches(there):
		*out = Equal
	case !mode.Overwrite:
		*out = Conflicting
	default:
		*out = Overwritten
		if !mode.DryRun {
			_, err = tx.ExecContext(ctx, sqlOverwrite, p.ID, p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock)
		}
	}
	return err
}
