package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/dump"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
)

func init() { extraCommands = append(extraCommands, exportCommand) }

// dumpBatch is how many products or orders export and import read or
// write at a time.
const dumpBatch = 1000

func exportCommand() *cobra.Command {
	var (
		out     string
		version int
	)
	cmd := &cobra.Command{
		Use:   "export [--out FILE] [--dump-version N]",
		Short: "Write every product and order of the configured store as a portable dump",
		Long: `Write every product (with its stock and incarnation) and every order (with
its lines, prices, timestamps and ids) of the configured store (the same
configuration as serve) as an airship dump: versioned JSON Lines, the same
whichever store it comes from, ending with a trailer that counts the records
and holds their SHA-256. "airship import" loads it into any store.

The dump goes to standard output, or to FILE. A regular FILE (or one that
does not exist yet) is written beside it under a temporary name and renamed
only once complete, so it never holds part of a dump; through a symbolic
link, the file the link names is written, and the link stays. Anything
else (a FIFO, a device, /dev/stdout) is written as it is, never replaced. Records are read a page at a time, in constant memory. For an
exact copy, export while nothing writes to the shop: each product and order
is otherwise exported as it was when its page was read.

--dump-version 1 writes the format of the releases before version 2 (the
same records; the trailer's counts and ids not checksummed), which those
releases can import: for going back to one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if version < 1 || version > dump.Version {
				return fmt.Errorf("export: --dump-version must be from 1 to %d", dump.Version)
			}
			return export(cmd.Context(), cfg, log, out, version, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the dump to (default: standard output)")
	cmd.Flags().IntVar(&version, "dump-version", dump.Version, "version of the dump format to write (1: for a release that reads only version 1)")
	config.AddFlags(cmd.Flags(), false)
	return cmd
}

// orderRecords is how export reads orders.
type orderRecords interface {
	Records(ctx context.Context, after int64, limit int) ([]orders.Record, error)
	// LastIDs returns the highest order and line ids ever handed out.
	LastIDs(ctx context.Context) (order, line int64, err error)
}

var _ orderRecords = (*sqlstore.Store)(nil)

func export(ctx context.Context, cfg config.Config, log *slog.Logger, file string, version int, stdout, progressOut io.Writer) error {
	b, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	recs, ok := b.orders.(orderRecords)
	if !ok {
		return errors.New("export: the configured order store cannot list its records")
	}

	w, commit, abort, err := outputFile(file, stdout)
	if err != nil {
		return err
	}
	bar := startProgress(progressOut, "export", -1)
	counts, err := writeDump(ctx, w, version, b.products, recs, bar)
	took := bar.Finish()
	if err == nil {
		err = commit()
	}
	if err != nil {
		abort()
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(progressOut, "exported %d products and %d orders (%d lines) in %s\n",
		counts.Products, counts.Orders, counts.Lines, took.Round(1e6))
	return nil
}

// writeDump writes every product, then every order: pages are read
// ahead, a few at a time, while the previous ones are encoded.
func writeDump(ctx context.Context, w io.Writer, version int, ps products.Store, recs orderRecords, bar *progress) (dump.Counts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reader when writing fails
	d, err := dump.NewVersionWriter(w, version)
	if err != nil {
		return dump.Counts{}, err
	}
	for b := range readPages(ctx, ps, recs) {
		if b.err != nil {
			return dump.Counts{}, b.err
		}
		for _, p := range b.products {
			if err := d.Product(p); err != nil {
				return dump.Counts{}, err
			}
		}
		for _, r := range b.orders {
			if err := d.Order(r); err != nil {
				return dump.Counts{}, err
			}
		}
		bar.Add(len(b.products) + len(b.orders))
	}
	if err := ctx.Err(); err != nil {
		return dump.Counts{}, err
	}
	lastOrder, lastLine, err := recs.LastIDs(ctx)
	if err != nil {
		return dump.Counts{}, err
	}
	return d.Close(dump.IDs{LastOrderID: lastOrder, LastLineID: lastLine})
}

// readPages sends every product, then every order, a page at a time (or
// the error that stopped it) until ctx ends.
func readPages(ctx context.Context, ps products.Store, recs orderRecords) <-chan batch {
	out := make(chan batch, 4)
	send := func(b batch) bool {
		select {
		case out <- b:
			return b.err == nil
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(out)
		for cursor := ""; ; {
			page, err := ps.List(ctx, cursor, dumpBatch)
			if !send(batch{products: page.Products, err: err}) {
				return
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		for after := int64(0); ; {
			page, err := recs.Records(ctx, after, dumpBatch)
			if !send(batch{orders: page, err: err}) || len(page) < dumpBatch {
				return
			}
			after = page[len(page)-1].ID
		}
	}()
	return out
}

// outputFile returns where to write: stdout; a file that is not regular
// (a FIFO, a device, /dev/stdout as a pipe), written as it is; or, for a
// regular file or a name that does not exist yet, a temporary file beside
// it that commit syncs and renames over it and abort removes. A symbolic
// link is followed: the file it names is written or replaced, never the
// link. A link to nothing and a directory are refused.
func outputFile(file string, stdout io.Writer) (w io.Writer, commit func() error, abort func(), err error) {
	if file == "" || file == "-" {
		return stdout, func() error { return nil }, func() {}, nil
	}
	target := file
	switch fi, err := os.Stat(file); {
	case errors.Is(err, fs.ErrNotExist):
		if li, lerr := os.Lstat(file); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return nil, nil, nil, fmt.Errorf("export: --out %s is a symbolic link to nothing; name the file itself", file)
		}
	case err != nil:
		return nil, nil, nil, fmt.Errorf("export: %w", err)
	case fi.IsDir():
		return nil, nil, nil, fmt.Errorf("export: --out %s is a directory", file)
	case !fi.Mode().IsRegular():
		// Written through: a temporary file renamed over it would put a
		// regular file in its place.
		f, err := os.OpenFile(file, os.O_WRONLY, 0)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("export: %w", err)
		}
		return f, f.Close, func() { f.Close() }, nil
	default:
		if target, err = filepath.EvalSymlinks(file); err != nil {
			return nil, nil, nil, fmt.Errorf("export: %w", err)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".partial-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("export: %w", err)
	}
	commit = func() error {
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), target)
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	return f, commit, abort, nil
}
