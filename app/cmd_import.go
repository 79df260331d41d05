package app

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/dump"
	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

func importCommand() *cobra.Command {
	var (
		in    string
		merge bool
	)
	cmd := &cobra.Command{
		Use:   "import [--in FILE] [--merge]",
		Short: "Load a dump written by airship export into the configured store",
		Long: `Load a dump written by "airship export" (from any store) into the configured
store (the same configuration as serve), keeping every id, incarnation,
price and timestamp; the id sequences move past the loaded orders, so new
orders continue after them.

The dump is read from standard input, or from FILE. It is first read
whole and checked (format, version, every record, the trailer's counts and
checksum): a truncated or corrupted dump is refused before anything is
written. Standard input is kept in a temporary file meanwhile.

A store that already holds products or orders is refused unless --merge is
given; then records already there and equal are skipped, and any record
there with other fields stops the import. Nothing of a failed import stays:
the embedded store loads everything in one transaction, PostgreSQL the
orders in one transaction, and products written to Redis are deleted again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return importDump(cmd.Context(), cfg, log, in, merge, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "file to read the dump from (default: standard input)")
	cmd.Flags().BoolVar(&merge, "merge", false, "load into a store that is not empty, skipping records already there and equal")
	AddFlags(cmd.Flags(), false)
	return cmd
}

// orderLoader is how import writes orders.
type orderLoader interface {
	Load(ctx context.Context, batch []orders.Record) (orders.LoadResult, error)
	// Finish moves the id sequences past the loaded orders and the given
	// last ids.
	Finish(ctx context.Context, lastOrder, lastLine int64) error
}

var (
	_ orderLoader = (*orders.PGLoader)(nil)
	_ orderLoader = (*orders.SQLStore)(nil)
)

// importReport counts what import wrote and found already there.
type importReport struct {
	products, equalProducts int
	orders, equalOrders     int
}

func importDump(ctx context.Context, cfg Config, log *slog.Logger, in string, merge bool, stdin io.Reader, out, progressOut io.Writer) error {
	src, cleanup, err := checkedDump(in, stdin, progressOut)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer cleanup()
	counts := src.counts

	b, err := openBackends(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()

	var r importReport
	bar := startProgress(progressOut, "import", counts.Products+counts.Orders)
	if b.embedded {
		// Products and orders in one transaction of the embedded store.
		err = sqlite.InTx(ctx, b.db, func(tx *sqlx.Tx) error {
			pstore, ostore := products.NewSQLStore(b.db).WithTx(tx), orders.NewSQLStore(b.db).WithTx(tx)
			if err := refuseNonEmpty(ctx, pstore, ostore, merge); err != nil {
				return err
			}
			return r.load(ctx, src, pstore, ostore, bar)
		})
	} else {
		err = r.loadPostgresRedis(ctx, b, src, merge, bar)
	}
	took := bar.Finish()
	if err != nil {
		return fmt.Errorf("import: %w; nothing was imported", err)
	}
	fmt.Fprintf(out, "imported %d products and %d orders (%d lines) in %s", r.products, r.orders, counts.Lines, took.Round(1e6))
	if merge {
		fmt.Fprintf(out, "; already there and equal: %d products, %d orders", r.equalProducts, r.equalOrders)
	}
	fmt.Fprintln(out)
	return nil
}

// loadPostgresRedis loads the orders in one PostgreSQL transaction,
// committed last, and the products into Redis, deleting those it created
// again if anything fails.
func (r *importReport) loadPostgresRedis(ctx context.Context, b *backends, src *checked, merge bool, bar *progress) (err error) {
	recs, _ := b.orders.(orderRecords)
	loader, _ := b.products.(productLoader)
	if recs == nil || loader == nil {
		return errors.New("the configured stores cannot be loaded")
	}
	if err := refuseNonEmpty(ctx, b.products, recs, merge); err != nil {
		return err
	}
	tx, err := b.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	journal, err := newCreatedJournal()
	if err != nil {
		return err
	}
	defer journal.remove()
	defer func() {
		if err != nil {
			if uerr := journal.undo(context.WithoutCancel(ctx), b.products); uerr != nil {
				err = fmt.Errorf("%w; deleting the products it had written failed too: %w", err, uerr)
			}
		}
	}()
	ol := orders.NewPGLoader(tx)
	if err := r.load(ctx, src, journal.wrap(loader, merge), ol, bar); err != nil {
		return err
	}
	return tx.Commit()
}

// refuseNonEmpty refuses a store that has products or orders, unless merge.
func refuseNonEmpty(ctx context.Context, ps products.Store, recs orderRecords, merge bool) error {
	if merge {
		return nil
	}
	page, err := ps.List(ctx, "", 1)
	if err != nil {
		return err
	}
	some, err := recs.Records(ctx, 0, 1)
	if err != nil {
		return err
	}
	if len(page.Products) > 0 || len(some) > 0 {
		return errors.New("the configured store is not empty: import into an empty store, or give --merge " +
			"to load beside what is there (records already there must be equal)")
	}
	return nil
}

// load reads the checked dump again and writes it in batches.
func (r *importReport) load(ctx context.Context, src *checked, pl productLoader, ol orderLoader, bar *progress) error {
	rd, f, err := src.open()
	if err != nil {
		return err
	}
	defer f.Close()
	var (
		ps  []products.Product
		ors []orders.Record
	)
	flushProducts := func() error {
		if len(ps) == 0 {
			return nil
		}
		loaded, err := pl.Load(ctx, ps, products.LoadMode{})
		if err != nil {
			return err
		}
		var conflicts []string
		for i, l := range loaded {
			switch l {
			case products.Created:
				r.products++
			case products.Equal:
				r.equalProducts++
			default:
				conflicts = append(conflicts, "product "+ps[i].ID+": a product with this id is here and differs")
			}
		}
		if conflicts != nil {
			return conflictError(conflicts)
		}
		bar.Add(len(ps))
		ps = ps[:0]
		return nil
	}
	flushOrders := func() error {
		if len(ors) == 0 {
			return nil
		}
		res, err := ol.Load(ctx, ors)
		if err != nil {
			return err
		}
		if res.Conflicts != nil {
			return conflictError(res.Conflicts)
		}
		r.orders += res.Created
		r.equalOrders += res.Equal
		bar.Add(len(ors))
		ors = ors[:0]
		return nil
	}
	for {
		item, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the dump changed since it was checked: %w", err)
		}
		switch {
		case item.Product != nil:
			if ps = append(ps, *item.Product); len(ps) == dumpBatch {
				if err := flushProducts(); err != nil {
					return err
				}
			}
		default:
			if err := flushProducts(); err != nil {
				return err
			}
			if ors = append(ors, *item.Order); len(ors) == dumpBatch {
				if err := flushOrders(); err != nil {
					return err
				}
			}
		}
	}
	if err := flushProducts(); err != nil {
		return err
	}
	if err := flushOrders(); err != nil {
		return err
	}
	return ol.Finish(ctx, src.ids.LastOrderID, src.ids.LastLineID)
}

func conflictError(conflicts []string) error {
	const most = 10
	more := ""
	if len(conflicts) > most {
		more = fmt.Sprintf("; and %d more", len(conflicts)-most)
		conflicts = conflicts[:most]
	}
	return fmt.Errorf("records of the dump conflict with the store: %s%s", strings.Join(conflicts, "; "), more)
}

// checked is a dump that was read whole and found sound: a file to read
// it again from.
type checked struct {
	path   string
	counts dump.Counts
	ids    dump.IDs
}

func (c *checked) open() (*dump.Reader, io.Closer, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return nil, nil, err
	}
	rd, err := dump.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return rd, f, nil
}

// checkedDump reads the dump in file (standard input if empty) to its
// trailer and checks it; standard input is kept in a temporary file that
// cleanup removes.
func checkedDump(file string, stdin io.Reader, progressOut io.Writer) (*checked, func(), error) {
	var (
		src     io.Reader
		path    = file
		cleanup = func() {}
		spool   *os.File
		spooled *bufio.Writer
	)
	if file == "" || file == "-" {
		f, err := os.CreateTemp("", "airship-import-*.jsonl")
		if err != nil {
			return nil, nil, err
		}
		spool, spooled, path = f, bufio.NewWriterSize(f, 1<<20), f.Name()
		cleanup = func() { f.Close(); os.Remove(f.Name()) }
		src = io.TeeReader(stdin, spooled)
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		src = f
	}
	bar := startProgress(progressOut, "check dump", -1)
	counts, ids, err := readThrough(src, bar)
	bar.Finish()
	if err == nil && spool != nil {
		if err = spooled.Flush(); err == nil {
			err = spool.Close()
		}
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return &checked{path: path, counts: counts, ids: ids}, cleanup, nil
}

// readThrough reads a dump to its trailer, checking every record.
func readThrough(src io.Reader, bar *progress) (dump.Counts, dump.IDs, error) {
	rd, err := dump.NewReader(src)
	if err != nil {
		return dump.Counts{}, dump.IDs{}, err
	}
	for {
		if _, err := rd.Next(); errors.Is(err, io.EOF) {
			return rd.Counts(), rd.IDs(), nil
		} else if err != nil {
			return dump.Counts{}, dump.IDs{}, err
		}
		bar.Add(1)
	}
}

// createdJournal remembers, in a temporary file, the ids of the products
// an import created, so that a failed import deletes them again.
type createdJournal struct {
	f *os.File
	w *bufio.Writer
}

func newCreatedJournal() (*createdJournal, error) {
	f, err := os.CreateTemp("", "airship-import-created-*")
	if err != nil {
		return nil, err
	}
	return &createdJournal{f: f, w: bufio.NewWriter(f)}, nil
}

func (j *createdJournal) remove() { j.f.Close(); os.Remove(j.f.Name()) }

// wrap returns a loader that journals the products it creates. When
// Load fails, some of a batch may have been written: if the store was
// empty (not merge), every id of the batch is the import's own and is
// journaled.
func (j *createdJournal) wrap(l productLoader, merge bool) productLoader {
	return journaled{l, j, merge}
}

type journaled struct {
	productLoader
	j     *createdJournal
	merge bool
}

func (l journaled) Load(ctx context.Context, ps []products.Product, mode products.LoadMode) ([]products.Loaded, error) {
	loaded, err := l.productLoader.Load(ctx, ps, mode)
	for i, p := range ps {
		if (err != nil && !l.merge) || (err == nil && loaded[i] == products.Created) {
			fmt.Fprintln(l.j.w, p.ID)
		}
	}
	return loaded, err
}

// undo deletes the journaled products, several at a time.
func (j *createdJournal) undo(ctx context.Context, ps products.Store) error {
	if err := j.w.Flush(); err != nil {
		return err
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	ids := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 8 {
		wg.Go(func() {
			for id := range ids {
				if err := ps.Delete(ctx, id); err != nil && !errors.Is(err, products.ErrNotFound) {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	sc := bufio.NewScanner(j.f)
	for sc.Scan() {
		ids <- sc.Text()
	}
	close(ids)
	wg.Wait()
	return cmp.Or(first, sc.Err())
}
