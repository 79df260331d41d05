package sqlitestore

// Loading products in bulk from outside the API (airship import,
// import-legacy and seed), and unloading what a failed import loaded.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/products"
)

const (
	sqlOverwrite = `UPDATE products SET title = $2, passenger_capacity = $3, maximum_speed = $4, in_stock = $5
WHERE id = $1`
	sqlHeldOn = `SELECT EXISTS (SELECT 1 FROM product_holds WHERE product_id = $1)`
)

// Load writes the products of a batch that are not there, in one
// transaction (or the one the store is bound to), and reports what it did
// with each (see products.Loaded): one prepared INSERT a product, and a read of
// the product that is there only when the id is taken. A product without
// an incarnation gets a new one when created. The products must be valid
// and their ids distinct.
func (s *Store) Load(ctx context.Context, ps []products.Product, mode products.LoadMode) ([]products.Loaded, error) {
	out := make([]products.Loaded, len(ps))
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

func loadOne(ctx context.Context, tx *sqlx.Tx, insert *sql.Stmt, p products.Product, mode products.LoadMode, out *products.Loaded) error {
	if !mode.DryRun {
		res, err := insert.ExecContext(ctx, p.ID, p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.IncarnationOrNew())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			*out = products.Created
			return err
		}
	}
	var there products.Product
	err := tx.GetContext(ctx, &there, sqlGetProduct, p.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows): // a dry run
		*out = products.Created
		return nil
	case err != nil:
		return err
	case p.Matches(there):
		*out = products.Equal
	case !mode.Overwrite:
		*out = products.Conflicting
	default:
		*out = products.Overwritten
		if !mode.DryRun {
			_, err = tx.ExecContext(ctx, sqlOverwrite, p.ID, p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock)
		}
	}
	return err
}

// Unload deletes the products of ps that are still as Load created them
// and hold no stock for an order in flight, in one transaction (or the
// one the store is bound to), and reports what it did with each (see
// products.Unloaded).
func (s *Store) Unload(ctx context.Context, ps []products.Product) ([]products.Unloaded, error) {
	out := make([]products.Unloaded, len(ps))
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		for i, p := range ps {
			if err := unloadOne(ctx, tx, p, &out[i]); err != nil {
				return fmt.Errorf("unload product %s: %w", p.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func unloadOne(ctx context.Context, tx *sqlx.Tx, p products.Product, out *products.Unloaded) error {
	var there products.Product
	err := tx.GetContext(ctx, &there, sqlGetProduct, p.ID)
	if errors.Is(err, sql.ErrNoRows) {
		*out = products.Absent
		return nil
	}
	if err != nil {
		return err
	}
	if !p.Matches(there) {
		*out = products.Kept
		return nil
	}
	var held bool
	if err := tx.GetContext(ctx, &held, sqlHeldOn, p.ID); err != nil {
		return err
	} else if held {
		*out = products.Kept
		return nil
	}
	res, err := tx.ExecContext(ctx, sqlDelete, p.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%d rows deleted, 1 expected (a trigger in the database?)", n)
	}
	*out = products.Removed
	return nil
}
