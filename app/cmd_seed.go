package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
)

// seedOptions are the seed command's flags.
type seedOptions struct {
	products, orders, batch, workers int
}

func seedCommand() *cobra.Command {
	var opts seedOptions
	cmd := &cobra.Command{
		Use:   "seed --products N [--orders M]",
		Short: "Bulk-load generated products and orders into the configured stores",
		Long: `Bulk-load generated products and orders into the configured stores (the
same configuration as serve: Redis and PostgreSQL, or the embedded store).

Products get the ids seed-000000000, seed-000000001, ... and are loaded
as airship import loads them: a product already there under one of these
ids is left as it is. Orders have 1 to 3 lines over the seeded products;
they take no stock. Writes go in batches of --batch (one Redis pipeline or
one SQL statement or transaction each), --workers batches at a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.products < 0 || opts.orders < 0 || opts.batch < 1 || opts.workers < 1 {
				return errors.New("seed: --products and --orders must be >= 0, --batch and --workers >= 1")
			}
			if opts.orders > 0 && opts.products == 0 {
				return errors.New("seed: orders are placed over the seeded products: give --products too")
			}
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return seed(cmd.Context(), cfg, log, opts, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&opts.products, "products", 0, "number of products to write")
	fs.IntVar(&opts.orders, "orders", 0, "number of orders to write")
	fs.IntVar(&opts.batch, "batch", 1000, "products or orders per write")
	fs.IntVar(&opts.workers, "workers", 4, "batches written concurrently")
	config.AddFlags(fs, false)
	return cmd
}

type orderSeeder interface {
	orderRecords
	orderLoader
	// Analyze refreshes the planner's statistics after the load.
	Analyze(ctx context.Context) error
}

var _ orderSeeder = (*sqlstore.Store)(nil)

func seed(ctx context.Context, cfg config.Config, log *slog.Logger, opts seedOptions, out io.Writer) error {
	b, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	ps := b.products
	ords, _ := b.orders.(orderSeeder)
	if ps == nil || ords == nil {
		return fmt.Errorf("seed: the configured stores cannot be seeded")
	}
	if b.embedded {
		opts.workers = 1 // one writer at a time anyway
	}

	if opts.products > 0 {
		var there atomic.Int64 // products already there, left as they are
		err := inBatches(ctx, "products", opts.products, opts.batch, opts.workers, out, func(ctx context.Context, from, to int) error {
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
	if opts.orders > 0 {
		// The seeded orders take the ids after the last ones handed out,
		// up to 3 line ids each, kept from new orders first.
		lastOrder, lastLine, err := ords.LastIDs(ctx)
		if err != nil {
			return err
		}
		if err := ords.MoveIDsPast(ctx, lastOrder+int64(opts.orders), lastLine+3*int64(opts.orders)); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(orders.Millis)
		err = inBatches(ctx, "orders", opts.orders, opts.batch, opts.workers, out, func(ctx context.Context, from, to int) error {
			rng := rand.New(rand.NewPCG(uint64(from), uint64(to)))
			batch := make([]orders.Record, 0, to-from)
			for i := from; i < to; i++ {
				r := orders.Record{ID: lastOrder + int64(i) + 1, CreatedAt: now, UpdatedAt: now}
				for k, l := range seedOrder(rng, opts.products) {
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
