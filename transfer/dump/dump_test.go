package dump

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// sample is a dump of the current version.
func sample(t *testing.T) []byte {
	t.Helper()
	return sampleOf(t, Version)
}

// sampleOf is a dump of three products and three orders (2, 4 and 6,
// with lines 20, 30 and 31) of the given version; its last ids are 7 and
// 40.
func sampleOf(t *testing.T, version int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewVersionWriter(&buf, version)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b<&>", "c"} {
		if err := w.Product(products.Product{ID: strings.Trim(id, "<&>"), Title: "Title " + id, PassengerCapacity: 1, MaximumSpeed: 2, InStock: 3, Incarnation: "00ff"}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	for id := int64(1); id <= 3; id++ {
		r := orders.Record{ID: id * 2, CreatedAt: at, UpdatedAt: at.Add(time.Hour)}
		for l := range id - 1 {
			r.Lines = append(r.Lines, orders.RecordLine{Line: orders.Line{ID: id*10 + l, ProductID: "a", Price: decimal.RequireFromString("5.5"), Quantity: 2}, CreatedAt: at, UpdatedAt: at})
		}
		if err := w.Order(r); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := w.Close(IDs{LastOrderID: 7, LastLineID: 40})
	if err != nil || counts != (Counts{Products: 3, Orders: 3, Lines: 3}) {
		t.Fatalf("Close = %+v, %v", counts, err)
	}
	return buf.Bytes()
}

func readAll(b []byte) ([]Item, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var items []Item
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
}

// TestRoundTrip: what the writer writes, the reader reads back; writing
// it again gives the same bytes.
func TestRoundTrip(t *testing.T) {
	b := sample(t)
	items, err := readAll(b)
	if err != nil || len(items) != 6 {
		t.Fatalf("read %d items: %v\n%s", len(items), err, b)
	}
	if o := items[5].Order; o.Lines[1].Price.StringFixed(2) != "5.50" || o.CreatedAt.Nanosecond() != 123000000 {
		t.Fatalf("order read back as %+v", o)
	}
	var again bytes.Buffer
	w := NewWriter(&again)
	for _, it := range items {
		if it.Product != nil {
			w.Product(*it.Product)
		} else {
			w.Order(*it.Order)
		}
	}
	if _, err := w.Close(IDs{LastOrderID: 7, LastLineID: 40}); err != nil || !bytes.Equal(again.Bytes(), b) {
		t.Fatalf("rewritten dump differs (%v):\n%s\nwas\n%s", err, again.Bytes(), b)
	}
}

// TestDamagedDumps: every kind of damage is found, with its line.
// TestTrailerWithoutIDs: a dump whose trailer gives no last ids (written
// before trailers had them) is read; its records' ids are the highest.
func TestTrailerWithoutIDs(t *testing.T) {
	old := bytes.Replace(sampleOf(t, 1), []byte(`"last_order_id":7,"last_line_id":40,`), nil, 1)
	if bytes.Contains(old, []byte("last_order_id")) {
		t.Fatal("the sample's trailer has no last ids to take out")
	}
	r, err := NewReader(bytes.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = r.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, io.EOF) || r.IDs() != (IDs{}) {
		t.Fatalf("read a dump without last ids: %v, ids %+v; want io.EOF and no ids", err, r.IDs())
	}
}

// reseal gives a dump whose records were altered the checksum of what it
// now holds, as one who alters a dump on purpose would.
func reseal(t *testing.T, b []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(b, []byte(`{"end":`))
	h := sha256.New()
	h.Write(b[:i])
	if !bytes.HasPrefix(b, []byte(`{"airship_dump":{"version":1}}`)) {
		var e entry
		if err := json.Unmarshal(b[i:], &e); err != nil || e.End == nil {
			t.Fatalf("no trailer to reseal: %v", err)
		}
		h.Write(unsealedTrailer(e.End.Counts, e.End.IDs))
	}
	re := regexp.MustCompile(`"sha256":"[0-9a-f]{64}"`)
	return append(b[:i:i], re.ReplaceAll(b[i:], []byte(`"sha256":"`+hex.EncodeToString(h.Sum(nil))+`"`))...)
}

func TestDamagedDumps(t *testing.T) {
	b := sample(t)
	lines := strings.SplitAfter(string(b), "\n")
	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	cases := []struct {
		name    string
		dump    []byte
		problem string
	}{
		{"empty", nil, "truncated"},
		{"truncated at a line", join(lines[:5]...), "without its trailer: it is truncated"},
		{"truncated inside a line", b[:len(b)-40], "truncated"},
		{"no trailer", join(lines[:len(lines)-2]...), "truncated"},
		{"a changed byte", bytes.Replace(b, []byte(`"in_stock":3`), []byte(`"in_stock":4`), 1), "checksum does not match"},
		{"a line dropped", join(append(append([]string{}, lines[:2]...), lines[3:]...)...), "the trailer counts"},
		{"data after the trailer", append(append([]byte{}, b...), "{}\n"...), "data after the trailer"},
		{"not a dump", []byte("{\"id\": 1}\n"), "not a dump record"},
		{"a later version", bytes.Replace(b, []byte(`{"version":2}`), []byte(`{"version":3}`), 1), "version 3; this airship reads versions 1 to 2"},
		{"version 0", bytes.Replace(b, []byte(`{"version":2}`), []byte(`{"version":0}`), 1), "version 0"},
		{"unknown field", bytes.Replace(b, []byte(`"in_stock":3,`), []byte(`"in_stock":3,"colour":"red",`), 1), "unknown field"},
		{"products out of order", join(lines[0], lines[2], lines[1]), "increasing id order"},
		{"bad product", bytes.Replace(b, []byte(`"id":"c"`), []byte(`"id":"c:d"`), 1), "product c:d: id:"},
		{"bad price", bytes.Replace(b, []byte(`"price":"5.50"`), []byte(`"price":"5.5"`), 1), "price"},
		{"bad time", bytes.Replace(b, []byte(`.123Z`), []byte(`.123+01:00`), 1), "created_at"},
		{"ids below the records", reseal(t, bytes.Replace(b, []byte(`"last_order_id":7`), []byte(`"last_order_id":5`), 1)), "last_order_id 5 is below the id 6 of a record"},
		// The trailer's counts and ids are checksummed (version 2).
		{"a trailer id changed", bytes.Replace(b, []byte(`"last_order_id":7`), []byte(`"last_order_id":2000000000`), 1), "checksum does not match"},
		{"a trailer id dropped", bytes.Replace(b, []byte(`"last_line_id":40,`), nil, 1), "checksum does not match"},
		// Ids must leave IDHeadroom of the API's range, whatever the
		// checksum says and in every version.
		{"the last order id at the end", reseal(t, bytes.Replace(b, []byte(`"last_order_id":7`), []byte(`"last_order_id":2147483647`), 1)),
			"the trailer's last_order_id 2147483647 is not from 1 to 2146483647"},
		{"the last line id near the end", reseal(t, bytes.Replace(b, []byte(`"last_line_id":40`), []byte(`"last_line_id":2146483648`), 1)),
			"the trailer's last_line_id 2146483648 is not from 1 to 2146483647"},
		{"a negative last id", reseal(t, bytes.Replace(b, []byte(`"last_line_id":40`), []byte(`"last_line_id":-1`), 1)), "last_line_id -1 is not from 1"},
		{"an order id near the end", reseal(t, bytes.Replace(b, []byte(`{"order":{"id":6,`), []byte(`{"order":{"id":2146483648,`), 1)),
			"order 2146483648: id: 2146483648 is not from 1 to 2146483647"},
		{"a line id near the end", reseal(t, bytes.Replace(b, []byte(`"id":31,`), []byte(`"id":2147483647,`), 1)), "lines[1].id: 2147483647 is not from 1 to 2146483647"},
		{"version 1: the last order id at the end", bytes.Replace(sampleOf(t, 1), []byte(`"last_order_id":7`), []byte(`"last_order_id":2147483647`), 1),
			"the trailer's last_order_id 2147483647 is not from 1 to 2146483647"},
		{"version 1: a record id at the end", reseal(t, bytes.Replace(sampleOf(t, 1), []byte(`{"order":{"id":6,`), []byte(`{"order":{"id":2147483647,`), 1)),
			"order 2147483647: id: 2147483647 is not from 1"},
		{"invalid UTF-8", bytes.Replace(b, []byte(`Title a`), []byte("Title \xff"), 1), "UTF-8"},
		// A dump is held to the API's rules: ids, duplicate fields, lone
		// surrogates.
		{"a line's product id breaks the id rule", reseal(t, bytes.Replace(b, []byte(`"product_id":"a"`), []byte(`"product_id":"bad id/../\"x\"\n<script>"`), 1)),
			"lines[0].product_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -"},
		{"an empty product id in a line", reseal(t, bytes.Replace(b, []byte(`"product_id":"a"`), []byte(`"product_id":""`), 1)), "lines[0].product_id: must be"},
		{"a field named twice", reseal(t, bytes.Replace(b, []byte(`"in_stock":3,`), []byte(`"in_stock":3,"in_stock":4,`), 1)), `duplicate object member name "in_stock"`},
		{"a line's field named twice", reseal(t, bytes.Replace(b, []byte(`"quantity":2,`), []byte(`"quantity":2,"quantity":200,`), 1)), `duplicate object member name "quantity"`},
		{"a record named twice", reseal(t, bytes.Replace(b, []byte(`{"order":{"id":4,`), []byte(`{"order":{"id":3},"order":{"id":4,`), 1)), `duplicate object member name "order"`},
		{"a line id of two orders", reseal(t, bytes.Replace(b, []byte(`"id":30,`), []byte(`"id":20,`), 1)),
			"order 6: lines[0].id: line id 20 is also a line of an earlier order of the dump"},
		{"a lone high surrogate", reseal(t, bytes.Replace(b, []byte(`Title a`), []byte(`Title \ud800a`), 1)), "invalid surrogate"},
		{"a lone low surrogate", reseal(t, bytes.Replace(b, []byte(`Title a`), []byte(`Title \udfffa`), 1)), "invalid surrogate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAll(c.dump)
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(err.Error(), c.problem) {
				t.Fatalf("read: %v; want a dump error mentioning %q", err, c.problem)
			}
		})
	}
}

// TestIDSet: the set of line ids holds every id from 1 to the largest
// once, whatever the order they come in.
func TestIDSet(t *testing.T) {
	s := idSet{}
	ids := []int64{1, 63, 64, 65535, 65536, 1 << 20, orders.MaxID, 2, orders.MaxID - 1}
	for _, id := range ids {
		if !s.add(id) {
			t.Fatalf("add(%d) of a new id = false", id)
		}
	}
	for _, id := range ids {
		if s.add(id) {
			t.Fatalf("add(%d) of an id already there = true", id)
		}
	}
	if s.add(3) == false || s.add(65537) == false {
		t.Fatal("a neighbour of an id there counts as there")
	}
}

// TestIDsUpToTheHeadroom: a dump may use every id up to MaxDumpID. In
// version 1 the trailer's ids are not checksummed: a change within the
// range goes unnoticed there (and only there).
func TestIDsUpToTheHeadroom(t *testing.T) {
	last := strconv.FormatInt(MaxDumpID, 10)
	for _, d := range []struct {
		name string
		dump []byte
	}{
		{"version 2", reseal(t, bytes.Replace(sample(t), []byte(`"last_order_id":7,"last_line_id":40`), []byte(`"last_order_id":`+last+`,"last_line_id":`+last), 1))},
		{"version 1", bytes.Replace(sampleOf(t, 1), []byte(`"last_order_id":7,"last_line_id":40`), []byte(`"last_order_id":`+last+`,"last_line_id":`+last), 1)},
	} {
		r, err := NewReader(bytes.NewReader(d.dump))
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = r.Next()
		}
		if !errors.Is(err, io.EOF) || r.IDs() != (IDs{MaxDumpID, MaxDumpID}) {
			t.Errorf("%s: %v, ids %+v; want both %d", d.name, err, r.IDs(), MaxDumpID)
		}
	}
}
