// Package dump reads and writes airship dumps: a shop's products (with
// their stock and incarnation) and orders (with their lines, prices,
// timestamps and ids) as JSON Lines, in a form that does not depend on
// the store they came from, so that any store can load them.
//
// A dump is, one JSON object a line:
//
//	{"airship_dump":{"version":2}}
//	{"product":{"id":"the_odyssey","title":"The Odyssey","passenger_capacity":101,"maximum_speed":5,"in_stock":9,"incarnation":"5f0c…"}}
//	…every product, in id order (byte order)…
//	{"order":{"id":1,"created_at":"2026-11-27T10:00:00.123Z","updated_at":"…","lines":[{"id":1,"product_id":"the_odyssey","price":"100000.99","quantity":1,"incarnation":"5f0c…","created_at":"…","updated_at":"…"}]}}
//	…every order, in id order, its lines in id order…
//	{"end":{"products":1,"orders":1,"lines":1,"last_order_id":3,"last_line_id":4,"sha256":"…"}}
//
// Timestamps are UTC to the millisecond; prices have two decimals. The
// trailer counts the records, gives the highest order and line ids the
// store ever handed out (so that ids of deleted orders are not handed out
// again after an import), and holds a SHA-256, so that a truncated or
// altered dump is detected before anything of it is used. The same data
// always gives the same bytes.
//
// # Versions
//
// Version 2 (written by default) checksums the trailer's own counts and
// ids too: its sha256 is the SHA-256 of every byte before the trailer
// followed by the trailer line as it is without its sha256 field,
//
//	{"end":{"products":P,"orders":O,"lines":L,"last_order_id":X,"last_line_id":Y}}
//
// and a newline, the numbers in decimal (0 when a store handed out no id).
// Version 1 (the records are the same) checksums only the bytes before
// the trailer, and its trailer leaves out ids that are 0: its ids can be
// changed unnoticed. Releases that read only version 1 refuse version 2
// (and any unknown field), so NewVersionWriter writes version 1, byte for
// byte as they did, for going back to such a release.
//
// # Ids
//
// Order and line ids lie in the API's range, 1 to orders.MaxID
// (2147483647), and every id of a dump, its trailer's included, must leave
// at least IDHeadroom of them: a dump whose last ids are within a million
// of the end would give a shop that can place few orders or none (a store
// out of ids refuses every new order), so it is refused instead, in
// either version.
package dump

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Version is the version of the format this package writes by default;
// it reads this one and every earlier one, from 1.
const Version = 2

// IDHeadroom is how many order and line ids a dump must leave unused: its
// ids are at most MaxDumpID. A million order ids is months of a busy
// shop's orders; a million line ids at least 10,000 orders of the largest
// size (100 lines).
const IDHeadroom = 1_000_000

// MaxDumpID is the highest id a dump may hold or name as its last.
const MaxDumpID = orders.MaxID - IDHeadroom

// TimeFormat is the format of a dump's timestamps.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// MaxLineLength bounds one line of a dump (an order with many lines).
const MaxLineLength = 64 << 20

type (
	header struct {
		Version int `json:"version"`
	}
	product struct {
		ID                string `json:"id"`
		Title             string `json:"title"`
		PassengerCapacity int64  `json:"passenger_capacity"`
		MaximumSpeed      int64  `json:"maximum_speed"`
		InStock           int64  `json:"in_stock"`
		Incarnation       string `json:"incarnation"`
	}
	line struct {
		ID          int64  `json:"id"`
		ProductID   string `json:"product_id"`
		Price       string `json:"price"`
		Quantity    int64  `json:"quantity"`
		Incarnation string `json:"incarnation"`
		CreatedAt   string `json:"created_at"`
		UpdatedAt   string `json:"updated_at"`
	}
	order struct {
		ID        int64  `json:"id"`
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
		Lines     []line `json:"lines"`
	}
	trailer struct {
		Counts
		IDs
		SHA256 string `json:"sha256"`
	}
	// entry is one line of a dump: exactly one field is set.
	entry struct {
		Header  *header  `json:"airship_dump,omitempty"`
		Product *product `json:"product,omitempty"`
		Order   *order   `json:"order,omitempty"`
		End     *trailer `json:"end,omitempty"`
	}
)

// Counts are the numbers of records of a dump.
type Counts struct {
	Products int64 `json:"products"`
	Orders   int64 `json:"orders"`
	Lines    int64 `json:"lines"`
}

// IDs are the highest order and line ids a store ever handed out; 0 where
// a dump does not say.
type IDs struct {
	LastOrderID int64 `json:"last_order_id,omitempty"`
	LastLineID  int64 `json:"last_line_id,omitempty"`
}

// Writer writes a dump: every product, then every order, then Close.
type Writer struct {
	w       *bufio.Writer
	version int
	sum     hash.Hash
	counts  Counts
	err     error
}

// NewWriter starts a dump of the current Version on w with its header.
func NewWriter(w io.Writer) *Writer {
	d, _ := NewVersionWriter(w, Version)
	return d
}

// NewVersionWriter starts a dump of the given version (1 or 2) on w.
func NewVersionWriter(w io.Writer, version int) (*Writer, error) {
	if version < 1 || version > Version {
		return nil, fmt.Errorf("dump: no version %d; this airship writes versions 1 to %d", version, Version)
	}
	d := &Writer{w: bufio.NewWriterSize(w, 1<<20), version: version, sum: sha256.New()}
	d.put(entry{Header: &header{Version: version}})
	return d, nil
}

func (d *Writer) put(e entry) {
	if d.err != nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		d.err = err
		return
	}
	b = append(b, '\n')
	d.sum.Write(b)
	_, d.err = d.w.Write(b)
}

// Product writes a product; every product comes before the first order.
func (d *Writer) Product(p products.Product) error {
	if d.counts.Orders > 0 {
		return errors.New("dump: products come before orders")
	}
	d.counts.Products++
	d.put(entry{Product: &product{ID: p.ID, Title: p.Title, PassengerCapacity: p.PassengerCapacity,
		MaximumSpeed: p.MaximumSpeed, InStock: p.InStock, Incarnation: p.Incarnation}})
	return d.err
}

// Order writes an order.
func (d *Writer) Order(r orders.Record) error {
	o := order{ID: r.ID, CreatedAt: stamp(r.CreatedAt), UpdatedAt: stamp(r.UpdatedAt), Lines: make([]line, len(r.Lines))}
	for i, l := range r.Lines {
		o.Lines[i] = line{ID: l.ID, ProductID: l.ProductID, Price: l.Price.StringFixed(2), Quantity: l.Quantity,
			Incarnation: l.Incarnation, CreatedAt: stamp(l.CreatedAt), UpdatedAt: stamp(l.UpdatedAt)}
	}
	d.counts.Orders++
	d.counts.Lines += int64(len(r.Lines))
	d.put(entry{Order: &o})
	return d.err
}

// Close writes the trailer with ids and flushes; it returns what the dump
// holds.
func (d *Writer) Close(ids IDs) (Counts, error) {
	if d.version == 1 {
		d.put(entry{End: &trailer{Counts: d.counts, IDs: ids, SHA256: hex.EncodeToString(d.sum.Sum(nil))}})
	} else if d.err == nil {
		unsealed := unsealedTrailer(d.counts, ids)
		d.sum.Write(unsealed)
		sealed := append(unsealed[:len(unsealed)-3:len(unsealed)-3], `,"sha256":"`+hex.EncodeToString(d.sum.Sum(nil))+"\"}}\n"...)
		_, d.err = d.w.Write(sealed)
	}
	if d.err == nil {
		d.err = d.w.Flush()
	}
	return d.counts, d.err
}

// unsealedTrailer is the trailer line of version 2 without its sha256
// field: what its checksum covers after the records.
func unsealedTrailer(c Counts, ids IDs) []byte {
	return fmt.Appendf(nil, `{"end":{"products":%d,"orders":%d,"lines":%d,"last_order_id":%d,"last_line_id":%d}}`+"\n",
		c.Products, c.Orders, c.Lines, ids.LastOrderID, ids.LastLineID)
}

func stamp(t time.Time) string { return t.UTC().Format(TimeFormat) }

// Error is a dump that cannot be read: corrupt, truncated or invalid.
type Error struct {
	Line    int64 // 1-based; 0 for the dump as a whole
	Problem string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return "dump: " + e.Problem
	}
	return fmt.Sprintf("dump line %d: %s", e.Line, e.Problem)
}

// Item is one record of a dump: a product or an order.
type Item struct {
	Product *products.Product
	Order   *orders.Record
}

// Reader reads a dump and checks it: its format and version, each line
// as I-JSON (RFC 7493: valid UTF-8, no field named twice, no unpaired
// surrogate escape), each record (the rules of the products module, for
// the product ids of order lines too; ids in increasing order, hence
// distinct; prices, quantities and timestamps), and, at the end, the
// trailer's counts and checksum.
type Reader struct {
	r         *bufio.Reader
	version   int
	sum       hash.Hash
	line      int64
	counts    Counts
	ids       IDs
	checksum  string
	done      bool
	lastID    string
	lastOrder int64
	lastLine  int64
	lineIDs   idSet // every line id read: no two orders share one
	strict    *jsontext.Decoder
}

// NewReader reads the header of a dump.
func NewReader(r io.Reader) (*Reader, error) {
	d := &Reader{r: bufio.NewReaderSize(r, 1<<20), sum: sha256.New(), lineIDs: idSet{},
		strict: jsontext.NewDecoder(bytes.NewReader(nil))}
	e, err := d.next()
	if err != nil {
		return nil, err
	}
	if e.Header == nil {
		return nil, &Error{Line: 1, Problem: "not an airship dump (no airship_dump header)"}
	}
	if e.Header.Version < 1 || e.Header.Version > Version {
		return nil, &Error{Line: 1, Problem: fmt.Sprintf("version %d; this airship reads versions 1 to %d", e.Header.Version, Version)}
	}
	d.version = e.Header.Version
	return d, nil
}

// Version returns the version of the dump.
func (d *Reader) Version() int { return d.version }

// Counts returns the records read so far.
func (d *Reader) Counts() Counts { return d.counts }

// IDs returns the trailer's ids, once Next returned io.EOF.
func (d *Reader) IDs() IDs { return d.ids }

// Highest returns, once Next returned io.EOF, the highest order and line
// ids the dump holds or its trailer names.
func (d *Reader) Highest() IDs {
	return IDs{LastOrderID: max(d.ids.LastOrderID, d.lastOrder), LastLineID: max(d.ids.LastLineID, d.lastLine)}
}

// Checksum returns the trailer's checksum, once Next returned io.EOF:
// two reads of the same dump give the same.
func (d *Reader) Checksum() string { return d.checksum }

// next reads and decodes one line.
func (d *Reader) next() (entry, error) {
	raw, err := d.readLine()
	if err != nil {
		return entry{}, err
	}
	d.line++
	if raw == nil {
		return entry{}, &Error{Line: d.line, Problem: fmt.Sprintf("the dump ends after %d lines without its trailer: it is truncated", d.line-1)}
	}
	if raw[len(raw)-1] != '\n' {
		return entry{}, &Error{Line: d.line, Problem: "the last line is cut short: the dump is truncated"}
	}
	if !utf8.Valid(raw) {
		return entry{}, &Error{Line: d.line, Problem: "not valid UTF-8: the dump is corrupt"}
	}
	// encoding/json takes the last of two fields with one name and reads
	// an unpaired surrogate escape as U+FFFD; a dump, like a request, is
	// held to RFC 7493 (I-JSON), which refuses both.
	d.strict.Reset(bytes.NewReader(raw))
	if _, err := d.strict.ReadValue(); err != nil {
		return entry{}, &Error{Line: d.line, Problem: "not a dump record: " + strings.TrimPrefix(err.Error(), "jsontext: ")}
	}
	var e entry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return entry{}, &Error{Line: d.line, Problem: "not a dump record: " + err.Error()}
	}
	if strings.TrimSpace(string(raw[dec.InputOffset():])) != "" {
		return entry{}, &Error{Line: d.line, Problem: "more than one JSON value on the line"}
	}
	set := 0
	for _, ok := range []bool{e.Header != nil, e.Product != nil, e.Order != nil, e.End != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return entry{}, &Error{Line: d.line, Problem: "a record must be exactly one of airship_dump, product, order, end"}
	}
	if e.End == nil {
		d.sum.Write(raw)
	}
	return e, nil
}

// readLine returns the next line with its newline; nil at the end.
func (d *Reader) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := d.r.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineLength {
			return nil, &Error{Line: d.line + 1, Problem: fmt.Sprintf("longer than %d bytes", MaxLineLength)}
		}
		switch {
		case err == nil && buf == nil:
			return chunk, nil
		case err == nil:
			return append(buf, chunk...), nil
		case errors.Is(err, bufio.ErrBufferFull):
			buf = append(buf, chunk...)
		case errors.Is(err, io.EOF):
			if len(buf)+len(chunk) == 0 {
				return nil, nil
			}
			return append(buf, chunk...), nil
		default:
			return nil, fmt.Errorf("read dump: %w", err)
		}
	}
}

// Next returns the next record, or io.EOF once the trailer was read and
// matched the records and their checksum (and nothing follows it).
func (d *Reader) Next() (Item, error) {
	if d.done {
		return Item{}, io.EOF
	}
	e, err := d.next()
	if err != nil {
		return Item{}, err
	}
	switch {
	case e.Header != nil:
		return Item{}, &Error{Line: d.line, Problem: "a second airship_dump header"}
	case e.End != nil:
		return Item{}, d.end(e.End)
	case e.Product != nil:
		p, err := d.product(e.Product)
		return Item{Product: &p}, err
	default:
		r, err := d.order(e.Order)
		return Item{Order: &r}, err
	}
}

func (d *Reader) end(t *trailer) error {
	if t.Counts != d.counts {
		return &Error{Line: d.line, Problem: fmt.Sprintf("the trailer counts %+v but the dump holds %+v: records are missing or added", t.Counts, d.counts)}
	}
	if d.version >= 2 {
		d.sum.Write(unsealedTrailer(t.Counts, t.IDs))
	}
	if sum := hex.EncodeToString(d.sum.Sum(nil)); t.SHA256 != sum {
		return &Error{Line: d.line, Problem: "the checksum does not match: the dump was altered or corrupted"}
	}
	// A dump written before trailers gave ids has none (0): the ids of its
	// records are then the highest there are. In version 1 the ids are not
	// checksummed: these rules are all that holds them.
	for _, id := range []struct {
		name       string
		last, seen int64
	}{{"last_order_id", t.LastOrderID, d.lastOrder}, {"last_line_id", t.LastLineID, d.lastLine}} {
		switch {
		case id.last < 0 || id.last > MaxDumpID:
			return &Error{Line: d.line, Problem: fmt.Sprintf("the trailer's %s %d %s", id.name, id.last, idRangeProblem)}
		case id.last != 0 && id.last < id.seen:
			return &Error{Line: d.line, Problem: fmt.Sprintf("the trailer's %s %d is below the id %d of a record", id.name, id.last, id.seen)}
		}
	}
	if rest, err := d.readLine(); err != nil || rest != nil {
		return &Error{Line: d.line + 1, Problem: "data after the trailer"}
	}
	d.done, d.ids, d.checksum = true, t.IDs, t.SHA256
	return io.EOF
}

// idRangeProblem says what is wrong with an id out of a dump's range.
var idRangeProblem = fmt.Sprintf("is not from 1 to %d: a dump's ids must leave %d of the API's ids (which end at %d) for new orders and lines",
	MaxDumpID, IDHeadroom, orders.MaxID)

func (d *Reader) product(rec *product) (products.Product, error) {
	p := products.Product{ID: rec.ID, Title: rec.Title, PassengerCapacity: rec.PassengerCapacity,
		MaximumSpeed: rec.MaximumSpeed, InStock: rec.InStock, Incarnation: rec.Incarnation}
	if d.counts.Orders > 0 {
		return p, &Error{Line: d.line, Problem: "a product after the orders"}
	}
	if problems := p.Problems(); problems != nil {
		return p, &Error{Line: d.line, Problem: "product " + rec.ID + ": " + strings.Join(problems, "; ")}
	}
	if d.counts.Products > 0 && rec.ID <= d.lastID {
		return p, &Error{Line: d.line, Problem: fmt.Sprintf("product %s comes after %s: products must be in increasing id order", rec.ID, d.lastID)}
	}
	d.lastID = rec.ID
	d.counts.Products++
	return p, nil
}

// twoDecimals is the form of a price in a dump (the API's rules apart).
var twoDecimals = regexp.MustCompile(`\.[0-9]{2}$`)

func (d *Reader) order(rec *order) (orders.Record, error) {
	r := orders.Record{ID: rec.ID, Lines: make([]orders.RecordLine, len(rec.Lines))}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if rec.ID < 1 || rec.ID > MaxDumpID {
		bad("id: %d %s", rec.ID, idRangeProblem)
	} else if rec.ID <= d.lastOrder {
		bad("comes after order %d: orders must be in increasing id order", d.lastOrder)
	}
	var err error
	if r.CreatedAt, err = parseStamp(rec.CreatedAt); err != nil {
		bad("created_at: %v", err)
	}
	if r.UpdatedAt, err = parseStamp(rec.UpdatedAt); err != nil {
		bad("updated_at: %v", err)
	}
	var lastLine int64
	for i, l := range rec.Lines {
		at := fmt.Sprintf("lines[%d].", i)
		rl := orders.RecordLine{Line: orders.Line{ID: l.ID, ProductID: l.ProductID, Quantity: l.Quantity, Incarnation: l.Incarnation}}
		if l.ID < 1 || l.ID > MaxDumpID {
			bad("%sid: %d %s", at, l.ID, idRangeProblem)
		} else if l.ID <= lastLine {
			bad("%sid: must be increasing", at)
		} else if !d.lineIDs.add(l.ID) {
			bad("%sid: line id %d is also a line of an earlier order of the dump", at, l.ID)
		}
		lastLine = l.ID
		d.lastLine = max(d.lastLine, l.ID)
		// The API's rules of a line, and the dump's form of a price: two
		// decimals, as Writer writes it.
		line, lineProblems := orders.ParseLine(at, l.ProductID, l.Price, l.Quantity)
		problems = append(problems, lineProblems...)
		if lineProblems == nil && !twoDecimals.MatchString(l.Price) {
			bad("%sprice: %q must have two decimals, as export writes it", at, l.Price)
		}
		rl.Price = line.Price
		if p := products.IncarnationProblem(l.Incarnation); p != "" {
			bad("%sincarnation: %s", at, p)
		}
		if rl.CreatedAt, err = parseStamp(l.CreatedAt); err != nil {
			bad("%screated_at: %v", at, err)
		}
		if rl.UpdatedAt, err = parseStamp(l.UpdatedAt); err != nil {
			bad("%supdated_at: %v", at, err)
		}
		r.Lines[i] = rl
	}
	if problems != nil {
		return r, &Error{Line: d.line, Problem: fmt.Sprintf("order %d: %s", rec.ID, strings.Join(problems, "; "))}
	}
	d.lastOrder = rec.ID
	d.counts.Orders++
	d.counts.Lines += int64(len(rec.Lines))
	return r, nil
}

func parseStamp(s string) (time.Time, error) {
	t, err := time.Parse(TimeFormat, s)
	if err != nil || t.Format(TimeFormat) != s {
		return time.Time{}, fmt.Errorf("%q is not a UTC time as %s", s, TimeFormat)
	}
	return t, nil
}

// idSet is a set of ids from 1 to orders.MaxID, a bit an id, in pages of
// 65,536 ids allocated as ids reach them: a dump's line ids (from 1, with
// few gaps) cost about a bit each, and no set of ids more than 256 MiB.
type idSet map[int64]*[1024]uint64

// add adds id and reports whether it was not there yet.
func (s idSet) add(id int64) bool {
	page := s[id>>16]
	if page == nil {
		page = new([1024]uint64)
		s[id>>16] = page
	}
	word, bit := &page[(id>>6)&1023], uint64(1)<<(id&63)
	if *word&bit != 0 {
		return false
	}
	*word |= bit
	return true
}
