package loadtest

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// defaultProductsCSV is a copy of the contract's fixtures/products.csv.
//
//go:embed products.csv
var defaultProductsCSV string

// Row is one product template of the products CSV.
type Row struct {
	ID                string `json:"id"`
	Title             string `json:"title"`
	PassengerCapacity int64  `json:"passenger_capacity"`
	MaximumSpeed      int64  `json:"maximum_speed"`
	InStock           int64  `json:"in_stock"`
}

// DefaultRows returns the rows of the embedded products CSV.
func DefaultRows() []Row {
	rows, err := ParseRows(strings.NewReader(defaultProductsCSV))
	if err != nil {
		panic("embedded products.csv: " + err.Error())
	}
	return rows
}

var csvColumns = []string{"id", "title", "passenger_capacity", "maximum_speed", "in_stock"}

// ParseRows reads a semicolon-separated products CSV whose header names
// the columns id, title, passenger_capacity, maximum_speed and in_stock
// (in any order; other columns are ignored).
func ParseRows(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.Comma = ';'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("products csv header: %w", err)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, c := range csvColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("products csv: no %q column", c)
		}
	}
	var rows []Row
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("products csv: %w", err)
		}
		row := Row{ID: rec[col["id"]], Title: rec[col["title"]]}
		for _, f := range []struct {
			name string
			dst  *int64
		}{
			{"passenger_capacity", &row.PassengerCapacity},
			{"maximum_speed", &row.MaximumSpeed},
			{"in_stock", &row.InStock},
		} {
			n, err := strconv.ParseInt(strings.TrimSpace(rec[col[f.name]]), 10, 64)
			if err != nil || n < 0 || n > math.MaxInt32 {
				return nil, fmt.Errorf("products csv line %d: %s %q is not an integer from 0 to %d (the API's range)",
					line, f.name, rec[col[f.name]], math.MaxInt32)
			}
			*f.dst = n
		}
		if row.ID == "" || row.Title == "" {
			return nil, fmt.Errorf("products csv line %d: empty id or title", line)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("products csv: no rows")
	}
	return rows, nil
}

// maxIDLength is the longest product id the API accepts.
const maxIDLength = 128

// ProductID returns the unique product id that a virtual user creates in
// its n-th iteration: "<row id>-<run>-<user>-<n>". Characters outside
// [A-Za-z0-9._~-] in the row id become "_", and the row id is shortened so
// that the whole id fits in 128 characters.
func ProductID(rowID, run string, user, n int) string {
	suffix := "-" + run + "-" + strconv.Itoa(user) + "-" + strconv.Itoa(n)
	room := maxIDLength - len(suffix)
	var b strings.Builder
	b.Grow(min(len(rowID), room) + len(suffix))
	for i := 0; i < len(rowID) && b.Len() < room; i++ {
		c := rowID[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '~', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteString(suffix)
	return b.String()
}
