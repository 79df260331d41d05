package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/transfer/dump"
)

// dumpBatch is how many products or orders export and import read or
// write at a time.
const dumpBatch = 1000

// Export writes every product and every order of the stores open opens
// as a dump of the given format version to file (standard output when
// file is empty), reporting its progress on progressOut.
func Export(ctx context.Context, open Opener, file string, version int, stdout, progressOut io.Writer) error {
	b, err := open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	recs := b.Orders
	if recs == nil {
		return errors.New("export: the configured order store cannot list its records")
	}

	w, commit, abort, err := outputFile(file, stdout)
	if err != nil {
		return err
	}
	bar := startProgress(progressOut, "export", -1)
	counts, err := writeDump(ctx, w, version, b.Products, recs, bar)
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
func writeDump(ctx context.Context, w io.Writer, version int, ps products.Store, recs Orders, bar *progress) (dump.Counts, error) {
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
func readPages(ctx context.Context, ps products.Store, recs Orders) <-chan batch {
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
