package transfer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// SeedOptions say how much Seed writes and how.
type SeedOptions struct {
	// Products and Orders are how many of each to write.
	Products, Orders int
	// Batch is how many are written per round trip, Workers how many
	// batches at a time.
	Batch, Workers int
}

// Seed writes generated products and orders into the stores open opens,
// reporting its progress on out.
func Seed(ctx context.Context, open Opener, opts SeedOptions, out io.Writer) error {
	b, err := open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	ps := b.Products
	ords := b.Orders
	if ps == nil || ords == nil {
		return fmt.Errorf("seed: the configured stores cannot be seeded")
	}
	if b.Embedded {
		opts.Workers = 1 // one writer at a time anyway
	}

	if opts.Products > 0 {
		var there atomic.Int64 // products already there, left as they are
		err := inBatches(ctx, "products", opts.Products, opts.Batch, opts.Workers, out, func(ctx context.Context, from, to int) error {
			batch := make([]products.Product, 0, to-from)
			for i := from; i < to; i++ {
				batch = append(batch, SeedProduct(i))
			}
			loaded, err := ps.Load(ctx, batch, products.LoadMode{})
			for _, l := range loaded {
				if l != products.Created {
					there.Add(1)
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		if n := there.Load(); n > 0 {
			fmt.Fprintf(out, "%d of the products were already there and were left as they are\n", n)
		}
	}
	if opts.Orders > 0 {
		// The seeded orders take the ids after the last ones handed out,
		// up to 3 line ids each, kept from new orders first.
		lastOrder, lastLine, err := ords.LastIDs(ctx)
		if err != nil {
			return err
		}
		if err := ords.MoveIDsPast(ctx, lastOrder+int64(opts.Orders), lastLine+3*int64(opts.Orders)); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(orders.TimePrecision)
		err = inBatches(ctx, "orders", opts.Orders, opts.Batch, opts.Workers, out, func(ctx context.Context, from, to int) error {
			rng := rand.New(rand.NewPCG(uint64(from), uint64(to)))
			batch := make([]orders.Record, 0, to-from)
			for i := from; i < to; i++ {
				r := orders.Record{ID: lastOrder + int64(i) + 1, CreatedAt: now, UpdatedAt: now}
				for k, l := range seedOrder(rng, opts.Products) {
					line := orders.Line{ID: lastLine + 3*int64(i) + int64(k) + 1, ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity}
					r.Lines = append(r.Lines, orders.RecordLine{Line: line, CreatedAt: now, UpdatedAt: now})
				}
				batch = append(batch, r)
			}
			res, err := ords.Load(ctx, batch)
			if err == nil && res.Conflicts != nil {
				err = fmt.Errorf("%s", res.Conflicts[0])
			}
			return err
		})
		if err != nil {
			return err
		}
		if err := ords.Analyze(ctx); err != nil {
			return err
		}
	}
	return nil
}

// SeedProductID is the id of the i-th seeded product: seed-000000123.
func SeedProductID(i int) string {
	s := strconv.Itoa(i)
	const width = 9
	if len(s) >= width {
		return "seed-" + s
	}
	return "seed-" + "000000000"[:width-len(s)] + s
}

// SeedProduct is the i-th seeded product.
func SeedProduct(i int) products.Product {
	return products.Product{
		ID:                SeedProductID(i),
		Title:             "Seeded airship " + strconv.Itoa(i),
		PassengerCapacity: int64(10 + i%491),
		MaximumSpeed:      int64(5 + i%96),
		InStock:           1000,
	}
}

// seedOrder returns 1 to 3 lines over distinct products among the first n
// seeded ones.
func seedOrder(rng *rand.Rand, n int) []orders.NewLine {
	lines := make([]orders.NewLine, 0, 3)
	for range 1 + rng.IntN(3) {
		id := SeedProductID(rng.IntN(n))
		dup := false
		for _, l := range lines {
			dup = dup || l.ProductID == id
		}
		if dup {
			continue
		}
		lines = append(lines, orders.NewLine{
			ProductID: id,
			Price:     decimal.New(int64(100+rng.IntN(10_000_000)), -2),
			Quantity:  int64(1 + rng.IntN(3)),
		})
	}
	return lines
}

// inBatches calls write for [0, total) in batches of size, workers at a
// time, showing its progress on out (see progress) and a final line.
func inBatches(ctx context.Context, what string, total, size, workers int, out io.Writer,
	write func(ctx context.Context, from, to int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	bar := startProgress(out, "seed "+what, int64(total))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for from := range next {
				to := min(from+size, total)
				if err := write(ctx, from, to); err != nil {
					cancel(err)
					return
				}
				bar.Add(to - from)
			}
		})
	}
feed:
	for from := 0; from < total; from += size {
		select {
		case next <- from:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	took := bar.Finish()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("seed %s: %d of %d written: %w", what, bar.done.Load(), total, err)
	}
	fmt.Fprintf(out, "seeded %d %s in %s (%.0f/s)\n", total, what, took.Round(time.Millisecond), float64(total)/took.Seconds())
	return nil
}
