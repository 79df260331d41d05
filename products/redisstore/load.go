package redisstore

// Loading products in bulk from outside the API (airship import,
// import-legacy and seed), and unloading what a failed import loaded.

import (
	"context"
	_ "embed" // the Lua scripts
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/products"
)

var (
	//go:embed lua/load.lua
	loadLua    string
	loadScript = redis.NewScript(loadLua)
)

// Load writes the products of a batch that are not there, each whole or
// not at all, in one round trip, and reports what it did with each (see
// products.Loaded). A product without an incarnation gets a new one when
// created. The products must be valid (products.Product.Problems) and
// their ids distinct.
func (s *Store) Load(ctx context.Context, ps []products.Product, mode products.LoadMode) ([]products.Loaded, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	var cmds []*redis.Cmd
	how, dry := loadArgs(mode)
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
	out := make([]products.Loaded, len(ps))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil || n < int(products.Created) || n > int(products.Overwritten) {
			return nil, fmt.Errorf("load product %s: reply %v, %v", ps[i].ID, c.Val(), err)
		}
		out[i] = products.Loaded(n)
	}
	return out, nil
}

var (
	//go:embed lua/unload.lua
	unloadLua    string
	unloadScript = redis.NewScript(unloadLua)
)

// Unload deletes the products of ps that are still as Load created them
// (the same fields, and the same incarnation when p has one) and hold no
// stock for an order in flight, and reports what it did with each: what
// airship import undoes when a load fails. A product that a client
// changed or ordered since, or deleted and created again, stays.
func (s *Store) Unload(ctx context.Context, ps []products.Product) ([]products.Unloaded, error) {
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
	out := make([]products.Unloaded, len(ps))
	var gone []any
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil || n < int(products.Removed) || n > int(products.Kept) {
			return nil, fmt.Errorf("unload product %s: reply %v, %w", ps[i].ID, c.Val(), redisErr(err))
		}
		if out[i] = products.Unloaded(n); out[i] == products.Removed {
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

// loadArgs are the mode and dry arguments of load.lua.
func loadArgs(m products.LoadMode) (mode, dry string) {
	mode, dry = "create", "0"
	if m.Overwrite {
		mode = "overwrite"
	}
	if m.DryRun {
		dry = "1"
	}
	return mode, dry
}
