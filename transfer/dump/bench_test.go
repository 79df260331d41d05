package dump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// benchDump is a dump of n products and n/10 orders of two lines.
func benchDump(b *testing.B, n int) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range n {
		w.Product(products.Product{ID: fmt.Sprintf("seed-%09d", i), Title: fmt.Sprintf("Seeded airship %d", i),
			PassengerCapacity: 10, MaximumSpeed: 5, InStock: 1000, Incarnation: "0123456789abcdef"})
	}
	at := time.Now()
	for i := range n / 10 {
		r := orders.Record{ID: int64(i + 1), CreatedAt: at, UpdatedAt: at}
		for l := range 2 {
			r.Lines = append(r.Lines, orders.RecordLine{Line: orders.Line{ID: int64(2*i + l + 1), ProductID: "seed-000000001",
				Price: decimal.New(12345, -2), Quantity: 1}, CreatedAt: at, UpdatedAt: at})
		}
		w.Order(r)
	}
	if _, err := w.Close(IDs{LastOrderID: int64(n / 10), LastLineID: int64(n / 5)}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRead reads a dump of 10,000 products and 1,000 orders.
func BenchmarkRead(b *testing.B) {
	raw := benchDump(b, 10_000)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkWrite writes a dump of 10,000 products and 1,000 orders.
func BenchmarkWrite(b *testing.B) {
	for b.Loop() {
		benchDump(b, 10_000)
	}
}
