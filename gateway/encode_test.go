package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// encodeJSON is what echo's c.JSON writes: encoding/json with HTML
// escaping and a final newline.
func encodeJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The documents as they were declared for encoding/json.
type (
	refLine struct {
		ID        int64  `json:"id"`
		ProductID string `json:"product_id"`
		Price     string `json:"price"`
		Quantity  int64  `json:"quantity"`
	}
	refOrder struct {
		ID           int64     `json:"id"`
		OrderDetails []refLine `json:"order_details"`
	}
	refEnrichedLine struct {
		refLine
		Image   string            `json:"image"`
		Product *products.Product `json:"product"`
	}
	refEnrichedOrder struct {
		ID           int64             `json:"id"`
		OrderDetails []refEnrichedLine `json:"order_details"`
	}
)

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	titles := []string{
		"The Odyssey", "", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f\b\f",
		"Zeppelin über Köln ✈", "line\u2028sep\u2029", "bad \xff\xfe utf-8", "\x7f del",
	}
	for _, title := range titles {
		p := products.Product{ID: "p-1.x~_", Title: title, PassengerCapacity: 101, MaximumSpeed: 0, InStock: 2147483647}
		got := append(appendProduct(nil, &p), '\n')
		if want := encodeJSON(t, p); !bytes.Equal(got, want) {
			t.Errorf("product %q:\n got %s\nwant %s", title, got, want)
		}
	}

	ps := []products.Product{{ID: "a", Title: "A & B"}, {ID: "b", Title: "B", InStock: 3}}
	if got, want := append(appendProducts(nil, ps), '\n'), encodeJSON(t, ps); !bytes.Equal(got, want) {
		t.Errorf("products:\n got %s\nwant %s", got, want)
	}
	if got := string(appendProducts(nil, nil)); got != "[]" {
		t.Errorf("no products: got %s, want []", got)
	}

	o := orders.Order{ID: 7, Lines: []orders.Line{
		{ID: 1, ProductID: "a", Price: decimal.RequireFromString("100000.99"), Quantity: 1},
		{ID: 2, ProductID: "gone", Price: decimal.RequireFromString("5"), Quantity: 3},
	}}
	ref := refOrder{ID: o.ID}
	refE := refEnrichedOrder{ID: o.ID}
	found := map[string]products.Product{"a": ps[0]}
	root := "http://www.example.com/airship/images?a=1&b=<2>"
	for _, l := range o.Lines {
		rl := refLine{ID: l.ID, ProductID: l.ProductID, Price: l.Price.StringFixed(2), Quantity: l.Quantity}
		ref.OrderDetails = append(ref.OrderDetails, rl)
		el := refEnrichedLine{refLine: rl, Image: root + "/" + l.ProductID + ".jpg"}
		if p, ok := found[l.ProductID]; ok {
			el.Product = &p
		}
		refE.OrderDetails = append(refE.OrderDetails, el)
	}
	if got, want := append(appendOrder(nil, &o), '\n'), encodeJSON(t, ref); !bytes.Equal(got, want) {
		t.Errorf("order:\n got %s\nwant %s", got, want)
	}
	list := []orders.Order{o, {ID: 8, Lines: o.Lines[:1]}}
	refList := []refOrder{ref, {ID: 8, OrderDetails: ref.OrderDetails[:1]}}
	if got, want := append(appendOrders(nil, list), '\n'), encodeJSON(t, refList); !bytes.Equal(got, want) {
		t.Errorf("orders:\n got %s\nwant %s", got, want)
	}
	if got, want := append(appendEnrichedOrder(nil, &o, root, lineProducts{byID: found}), '\n'), encodeJSON(t, refE); !bytes.Equal(got, want) {
		t.Errorf("enriched order:\n got %s\nwant %s", got, want)
	}
	// A one-line order, with its product and without.
	one := orders.Order{ID: 9, Lines: o.Lines[:1]}
	refOne := refEnrichedOrder{ID: 9, OrderDetails: refE.OrderDetails[:1]}
	if got, want := append(appendEnrichedOrder(nil, &one, root, lineProducts{one: &ps[0]}), '\n'), encodeJSON(t, refOne); !bytes.Equal(got, want) {
		t.Errorf("one-line order:\n got %s\nwant %s", got, want)
	}
	refOne.OrderDetails = []refEnrichedLine{{refLine: refE.OrderDetails[0].refLine, Image: refE.OrderDetails[0].Image}}
	if got, want := append(appendEnrichedOrder(nil, &one, root, lineProducts{}), '\n'), encodeJSON(t, refOne); !bytes.Equal(got, want) {
		t.Errorf("one-line order without its product:\n got %s\nwant %s", got, want)
	}
}

// appendPrice writes what StringFixed(2) does, quoted, for every price.
func TestAppendPriceMatchesStringFixed(t *testing.T) {
	for _, text := range []string{
		"0", "0.00", "5", "5.1", "100000.99", "-0.01", "-12.5", "1.005", "1.999", "1e3", "12e1",
		"999999999999999", "9999999999999.99", "123456789012345678901.25", "-123456789012345678901",
	} {
		d := decimal.RequireFromString(text)
		if got, want := string(appendPrice(nil, d)), `"`+d.StringFixed(2)+`"`; got != want {
			t.Errorf("price %s: got %s, want %s", text, got, want)
		}
	}
}
