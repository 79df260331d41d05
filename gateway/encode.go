package gateway

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// The documents of the hot paths (a product, an order, a page of orders)
// are written by appending to a pooled buffer instead of through echo's
// c.JSON: that takes reflection over the document, a map lookup of the
// query for "?pretty", and an encoder per response, which was a few per
// cent of the server's CPU time under load. The output is byte for byte
// what encoding/json writes (HTML-safe escaping, a final newline).

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// jsonType is the Content-Type of every document sent. Header values are
// never changed in place, so every response shares this one.
var jsonType = []string{echo.MIMEApplicationJSON}

// sendJSON sends the document that fill appends with the given status.
func sendJSON(c echo.Context, status int, fill func([]byte) []byte) error {
	bp := bufPool.Get().(*[]byte)
	b := append(fill((*bp)[:0]), '\n')
	res := c.Response()
	res.Header()[echo.HeaderContentType] = jsonType
	res.WriteHeader(status)
	_, err := res.Write(b)
	if cap(b) <= 64<<10 { // do not keep the buffers of huge pages
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return err
}

// appendString appends s as a JSON string. Strings of printable ASCII
// without characters that need escaping (all ids, prices and most titles)
// are copied; any other string is escaped by encoding/json itself, so the
// rules (HTML-safe, U+2028/U+2029, invalid UTF-8) are exactly its own.
func appendString(b []byte, s string) []byte {
	if !plain(s) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether s is printable ASCII without characters that JSON
// or HTML-safe escaping changes: appendString copies such a string.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendPrice appends a price as a JSON string with two decimals, what
// d.StringFixed(2) gives, without its big.Int arithmetic for the prices
// PostgreSQL and the stores hand back (at most two decimals, at most 15
// digits).
func appendPrice(b []byte, d decimal.Decimal) []byte {
	e := d.Exponent()
	if e < -2 || e > 0 || d.NumDigits() > 15 {
		return appendString(b, d.StringFixed(2))
	}
	cents := d.CoefficientInt64()
	for ; e > -2; e-- {
		cents *= 10
	}
	b = append(b, '"')
	if cents < 0 {
		b = append(b, '-')
		cents = -cents
	}
	b = strconv.AppendInt(b, cents/100, 10)
	return append(b, '.', byte('0'+cents/10%10), byte('0'+cents%10), '"')
}

// appendImage appends the image URL of a product as a JSON string.
func appendImage(b []byte, imageRoot, productID string) []byte {
	if !plain(imageRoot) || !plain(productID) {
		return appendString(b, imageRoot+"/"+productID+".jpg")
	}
	b = append(b, '"')
	b = append(b, imageRoot...)
	b = append(b, '/')
	b = append(b, productID...)
	return append(b, `.jpg"`...)
}

// appendProduct appends a product document.
func appendProduct(b []byte, p *products.Product) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"title":`...)
	b = appendString(b, p.Title)
	b = append(b, `,"passenger_capacity":`...)
	b = strconv.AppendInt(b, p.PassengerCapacity, 10)
	b = append(b, `,"maximum_speed":`...)
	b = strconv.AppendInt(b, p.MaximumSpeed, 10)
	b = append(b, `,"in_stock":`...)
	b = strconv.AppendInt(b, p.InStock, 10)
	return append(b, '}')
}

// appendProducts appends an array of product documents.
func appendProducts(b []byte, ps []products.Product) []byte {
	b = append(b, '[')
	for i := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendProduct(b, &ps[i])
	}
	return append(b, ']')
}

// appendLineFields appends the fields of an order line as GET /orders
// lists it, without the closing brace.
func appendLineFields(b []byte, l *orders.Line) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, l.ID, 10)
	b = append(b, `,"product_id":`...)
	b = appendString(b, l.ProductID)
	b = append(b, `,"price":`...)
	b = appendPrice(b, l.Price)
	b = append(b, `,"quantity":`...)
	return strconv.AppendInt(b, l.Quantity, 10)
}

// appendOrder appends an order as GET /orders lists it: id and
// order_details (id, product_id, price, quantity).
func appendOrder(b []byte, o *orders.Order) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, o.ID, 10)
	b = append(b, `,"order_details":[`...)
	for i := range o.Lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendLineFields(b, &o.Lines[i]), '}')
	}
	return append(b, "]}"...)
}

// appendOrders appends an array of orders as GET /orders lists them.
func appendOrders(b []byte, list []orders.Order) []byte {
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendOrder(b, &list[i])
	}
	return append(b, ']')
}

// appendEnrichedOrder appends an order as GET /orders/{id} returns it:
// each line with its image and its product's current document, or null.
func appendEnrichedOrder(b []byte, o *orders.Order, imageRoot string, found lineProducts) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, o.ID, 10)
	b = append(b, `,"order_details":[`...)
	for i := range o.Lines {
		l := &o.Lines[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLineFields(b, l)
		b = append(b, `,"image":`...)
		b = appendImage(b, imageRoot, l.ProductID)
		b = append(b, `,"product":`...)
		if p, ok := found.get(l.ProductID); ok {
			b = appendProduct(b, &p)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// lineProducts are the products of an order's lines that exist: the one
// product of a one-line order, or those of a longer one by id.
type lineProducts struct {
	one  *products.Product
	byID map[string]products.Product
}

func (f lineProducts) get(id string) (products.Product, bool) {
	if f.one != nil {
		return *f.one, f.one.ID == id
	}
	p, ok := f.byID[id]
	return p, ok
}
