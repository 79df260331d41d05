package transfer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/sqlitestore"
	"github.com/airshipltd/airship/transfer/dump"
)

// ImportOptions say what Import reads and how it loads it.
type ImportOptions struct {
	// In is the dump's file; empty reads the standard input given to Import.
	In string
	// SpoolDir is where a dump read from a pipe or terminal is copied
	// for the second pass (empty: the system's temporary directory).
	SpoolDir string
	// Merge loads into a store that is not empty, skipping records
	// already there and equal.
	Merge bool
}

// importReport counts what import wrote and found already there.
type importReport struct {
	mu                      sync.Mutex // load's workers count concurrently
	products, equalProducts int
	orders, equalOrders     int
	counts                  dump.Counts
	// checksum is the dump's checksum in the first pass: the second must
	// read the same dump.
	checksum string
}

// Import loads a dump written by Export into the stores open opens: it
// checks the whole dump first and loads it only if it is sound, and a
// load that fails leaves nothing of it (see the import command). It
// reports what it loaded on out and its progress on progressOut.
func Import(ctx context.Context, open Opener, opts ImportOptions, stdin io.Reader, out, progressOut io.Writer) error {
	src, err := openDumpSource(opts.In, opts.SpoolDir, stdin)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer src.close()
	b, err := open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	recs := b.Orders
	if recs == nil {
		return errors.New("import: the configured order store cannot be loaded")
	}
	if err := refuseNonEmpty(ctx, b.Products, recs, opts.Merge); err != nil {
		return fmt.Errorf("import: %w; nothing was imported", err)
	}

	// The first pass checks the whole dump and writes nothing.
	start := time.Now()
	checked, err := checkDump(src, progressOut)
	if err != nil {
		return fmt.Errorf("import: %w; nothing was imported", err)
	}
	again, err := src.second()
	if err != nil {
		return fmt.Errorf("import: %w; nothing was imported", err)
	}
	rd, err := dump.NewReader(again)
	if err != nil {
		return fmt.Errorf("import: %w; nothing was imported", err)
	}
	r := importReport{checksum: checked.Checksum()}
	bar := startProgress(progressOut, "import", checked.Counts().Products+checked.Counts().Orders)
	if b.Embedded {
		// Products and orders in one transaction of the embedded store.
		err = sqlite.InTx(ctx, b.DB, func(tx *sqlx.Tx) error {
			pstore, ostore := sqlitestore.New(b.DB).WithTx(tx), sqlstore.NewSQLite(b.DB).WithTx(tx)
			if err := refuseNonEmpty(ctx, pstore, ostore, opts.Merge); err != nil {
				return err
			}
			return r.load(ctx, rd, pstore, ostore, bar, 0)
		})
	} else {
		err = r.loadPostgresRedis(ctx, b, rd, checked.Highest(), opts, bar)
	}
	loading := bar.Finish()
	if err != nil {
		return fmt.Errorf("import: %w; nothing was imported", err)
	}
	fmt.Fprintf(out, "imported %d products and %d orders (%d lines) in %s (checking %s, loading %s)", r.products, r.orders,
		r.counts.Lines, time.Since(start).Round(1e6), (time.Since(start) - loading).Round(1e6), loading.Round(1e6))
	if opts.Merge {
		fmt.Fprintf(out, "; already there and equal: %d products, %d orders", r.equalProducts, r.equalOrders)
	}
	fmt.Fprintln(out)
	return nil
}

// checkDump reads the dump of src through, checking it whole (see
// dump.Reader), and returns the reader at its end.
func checkDump(src *dumpSource, progressOut io.Writer) (*dump.Reader, error) {
	rd, err := dump.NewReader(src.first())
	if err != nil {
		return nil, err
	}
	bar := startProgress(progressOut, "check", -1)
	defer bar.Finish()
	for {
		if _, err := rd.Next(); errors.Is(err, io.EOF) {
			return rd, nil
		} else if err != nil {
			return nil, err
		}
		bar.Add(1)
	}
}

// dumpSource is a dump that import reads twice: a regular file from where
// it starts, or, for anything else, a copy spooled to a temporary file
// during the first read.
type dumpSource struct {
	file  *os.File // read twice: the dump itself, or the spool
	start int64    // where the dump starts in file
	in    io.Reader
	spool *bufio.Writer // the copy being written; nil for a regular file
	owned io.Closer     // what openDumpSource opened
}

// openDumpSource opens the dump in (a file name, or standard input for ""
// and "-"), spooling it to a new file in spoolDir ("": the system's
// temporary directory) unless it is a regular file.
func openDumpSource(in, spoolDir string, stdin io.Reader) (*dumpSource, error) {
	s := &dumpSource{in: stdin}
	if in != "" && in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return nil, err
		}
		s.in, s.owned = f, f
	}
	if f, ok := s.in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if s.start, err = f.Seek(0, io.SeekCurrent); err == nil {
				s.file = f
				return s, nil
			}
		}
	}
	f, err := os.CreateTemp(spoolDir, "airship-import-*.jsonl")
	if err != nil {
		s.close()
		return nil, fmt.Errorf("spool the dump (it is not a regular file, and is read twice): %w", err)
	}
	// Removed at once: the open file stays readable, and nothing is left
	// behind whatever ends the import.
	_ = os.Remove(f.Name())
	s.file, s.spool = f, bufio.NewWriterSize(f, 1<<20)
	return s, nil
}

// first returns the dump to read the first time: copied to the spool as
// it is read when spooling.
func (s *dumpSource) first() io.Reader {
	if s.spool == nil {
		return s.file
	}
	return io.TeeReader(s.in, spoolWriter{s.spool})
}

// spoolWriter writes to the spool; a failure to write it (a full disk)
// fails the read, and so the first pass.
type spoolWriter struct{ w *bufio.Writer }

func (w spoolWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = fmt.Errorf("spool the dump (give --spool-dir a directory with room for it, or --in a regular file): %w", err)
	}
	return n, err
}

// second returns the dump to read the second time, from its start.
func (s *dumpSource) second() (io.Reader, error) {
	if s.spool != nil {
		if err := s.spool.Flush(); err != nil {
			return nil, fmt.Errorf("spool the dump (give --spool-dir a directory with room for it, or --in a regular file): %w", err)
		}
	}
	if _, err := s.file.Seek(s.start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read the dump again: %w", err)
	}
	return s.file, nil
}

func (s *dumpSource) close() {
	if s.spool != nil {
		s.file.Close()
		_ = os.Remove(s.file.Name()) // where removing an open file failed
	}
	if s.owned != nil {
		s.owned.Close()
	}
}

// loadPostgresRedis loads the orders in one PostgreSQL transaction,
// committed last, and the products into Redis, deleting those it created
// again if anything fails. The id sequences first move past the dump's
// highest ids, so that orders placed meanwhile never take one of them.
func (r *importReport) loadPostgresRedis(ctx context.Context, b *Stores, rd *dump.Reader, highest dump.IDs, opts ImportOptions, bar *progress) (err error) {
	if err := b.Orders.MoveIDsPast(ctx, highest.LastOrderID, highest.LastLineID); err != nil {
		return err
	}
	tx, err := b.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	journal, err := newCreatedJournal(opts.SpoolDir)
	if err != nil {
		return err
	}
	defer journal.remove()
	defer func() {
		if err != nil {
			if uerr := journal.undo(context.WithoutCancel(ctx), b.Products); uerr != nil {
				err = fmt.Errorf("%w; %w", err, uerr)
			}
		}
	}()
	if err := r.load(ctx, rd, journal.wrap(b.Products, opts.Merge), sqlstore.NewPostgres(b.DB).WithTx(tx), bar, redisLoaders); err != nil {
		return err
	}
	return tx.Commit()
}

// redisLoaders is how many product batches an import into Redis loads at
// a time.
const redisLoaders = 4

// refuseNonEmpty refuses a store that has products or orders, unless merge.
func refuseNonEmpty(ctx context.Context, ps products.Store, recs Orders, merge bool) error {
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

// batch is a run of products or of orders read from a dump, or the
// error that ended the reading.
type batch struct {
	products []products.Product
	orders   []orders.Record
	err      error
}

// readBatches reads the dump in batches of dumpBatch records, checking
// each, and sends them on the returned channel (closed at the end of a
// sound dump, after an error batch otherwise) until ctx ends. It reads
// ahead while the caller writes.
func readBatches(ctx context.Context, rd *dump.Reader) <-chan batch {
	out := make(chan batch, 4)
	go func() {
		defer close(out)
		var cur batch
		send := func(b batch) bool {
			select {
			case out <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			item, err := rd.Next()
			if errors.Is(err, io.EOF) {
				if len(cur.products)+len(cur.orders) > 0 {
					send(cur)
				}
				return
			}
			if err != nil {
				send(batch{err: err})
				return
			}
			if item.Order != nil && len(cur.products) > 0 { // the orders begin
				if !send(cur) {
					return
				}
				cur = batch{}
			}
			if item.Product != nil {
				cur.products = append(cur.products, *item.Product)
			} else {
				cur.orders = append(cur.orders, *item.Order)
			}
			if len(cur.products)+len(cur.orders) == dumpBatch {
				if !send(cur) {
					return
				}
				cur = batch{}
			}
		}
	}()
	return out
}

// load writes the dump's records in batches as they are read, then moves
// the id sequences; it fails, leaving its caller to undo what it wrote,
// on the first damaged record or conflict. With workers > 0, that many
// goroutines load product batches side by side (and beside the orders),
// which keeps a Redis busy while each waits for its pipeline; with 0,
// everything runs in order on the caller's goroutine (one transaction).
func (r *importReport) load(ctx context.Context, rd *dump.Reader, pl productLoader, ol Orders, bar *progress, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil) // stops the reader and the workers when load fails
	productBatches := make(chan []products.Product)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ps := range productBatches {
				if err := r.loadProducts(ctx, ps, pl, bar); err != nil {
					cancel(err)
				}
			}
		})
	}
	for b := range readBatches(ctx, rd) {
		switch {
		case b.err != nil:
			cancel(b.err)
		case len(b.products) > 0 && workers > 0:
			select {
			case productBatches <- b.products:
			case <-ctx.Done():
			}
		case len(b.products) > 0:
			if err := r.loadProducts(ctx, b.products, pl, bar); err != nil {
				cancel(err)
			}
		default:
			if err := r.loadOrders(ctx, b.orders, ol, bar); err != nil {
				cancel(err)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(productBatches)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if rd.Checksum() != r.checksum {
		return errors.New("the dump changed between its check and its loading (leave it alone while import runs)")
	}
	r.mu.Lock()
	r.counts = rd.Counts()
	r.mu.Unlock()
	ids := rd.IDs()
	return ol.MoveIDsPast(ctx, ids.LastOrderID, ids.LastLineID)
}

func (r *importReport) loadProducts(ctx context.Context, ps []products.Product, pl productLoader, bar *progress) error {
	loaded, err := pl.Load(ctx, ps, products.LoadMode{})
	if err != nil {
		return err
	}
	var created, equal int
	var conflicts []string
	for i, l := range loaded {
		switch l {
		case products.Created:
			created++
		case products.Equal:
			equal++
		default:
			conflicts = append(conflicts, "product "+ps[i].ID+": a product with this id is here and differs")
		}
	}
	if conflicts != nil {
		return conflictError(conflicts)
	}
	r.mu.Lock()
	r.products += created
	r.equalProducts += equal
	r.mu.Unlock()
	bar.Add(len(ps))
	return nil
}

func (r *importReport) loadOrders(ctx context.Context, rs []orders.Record, ol Orders, bar *progress) error {
	res, err := ol.Load(ctx, rs)
	if err != nil {
		return err
	}
	if res.Conflicts != nil {
		return conflictError(res.Conflicts)
	}
	r.mu.Lock()
	r.orders += res.Created
	r.equalOrders += res.Equal
	r.mu.Unlock()
	bar.Add(len(rs))
	return nil
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

// productUnloader deletes products a load created, unless they changed
// since (products.BulkStore.Unload).
type productUnloader interface {
	Unload(ctx context.Context, ps []products.Product) ([]products.Unloaded, error)
}

// createdJournal remembers, in a temporary file, the products an import
// created (as it wrote them, one JSON object a line), so that a failed
// import deletes them again.
type createdJournal struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// newCreatedJournal starts a journal in dir ("": the system's temporary
// directory); like the spool, its file is removed at once.
func newCreatedJournal(dir string) (*createdJournal, error) {
	f, err := os.CreateTemp(dir, "airship-import-created-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return &createdJournal{f: f, w: bufio.NewWriter(f)}, nil
}

func (j *createdJournal) remove() { j.f.Close(); _ = os.Remove(j.f.Name()) }

// wrap returns a loader that journals the products it creates. When
// Load fails, some of a batch may have been written: if the store was
// empty (not merge), every product of the batch is the import's own and
// is journaled.
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
	l.j.mu.Lock()
	defer l.j.mu.Unlock()
	enc := json.NewEncoder(l.j.w)
	for i, p := range ps {
		if (err != nil && !l.merge) || (err == nil && loaded[i] == products.Created) {
			if jerr := enc.Encode(p); jerr != nil {
				return nil, errors.Join(err, jerr)
			}
		}
	}
	return loaded, err
}

// undo deletes the journaled products that are still as the import wrote
// them, a batch at a time. Products that clients changed or ordered
// meanwhile stay, and are named in the error it returns.
func (j *createdJournal) undo(ctx context.Context, ps productUnloader) error {
	if err := j.w.Flush(); err != nil {
		return err
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var (
		kept  []string
		batch []products.Product
	)
	unload := func() error {
		done, err := ps.Unload(ctx, batch)
		if err != nil {
			return fmt.Errorf("deleting the products it had written failed: %w", err)
		}
		for i, d := range done {
			if d == products.Kept {
				kept = append(kept, batch[i].ID)
			}
		}
		batch = batch[:0]
		return nil
	}
	dec := json.NewDecoder(j.f)
	for {
		var p products.Product
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("read the journal of created products: %w", err)
		}
		if batch = append(batch, p); len(batch) == dumpBatch {
			if err := unload(); err != nil {
				return err
			}
		}
	}
	if err := unload(); err != nil {
		return err
	}
	if len(kept) > 0 {
		return fmt.Errorf("%d products it created were changed or ordered meanwhile and stay: %s",
			len(kept), strings.Join(kept[:min(len(kept), 20)], ", "))
	}
	return nil
}
