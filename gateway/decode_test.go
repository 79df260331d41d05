package gateway

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeNewOrder(t *testing.T) {
	line := func(fields string) string { return `{"order_details": [` + fields + `]}` }
	ok := `{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}`
	cases := []struct {
		name, body string
		problem    string // "" when valid
		price      string
	}{
		{"string price", line(ok), "", "100000.99"},
		{"number price", line(`{"product_id": "a", "price": 99.9, "quantity": 2}`), "", "99.90"},
		{"integer price", line(`{"product_id": "a", "price": 5, "quantity": 2}`), "", "5.00"},
		{"zero price", line(`{"product_id": "a", "price": "0", "quantity": 1}`), "", "0.00"},
		{"largest price", line(`{"product_id": "a", "price": "9999999999999999.99", "quantity": 1}`), "", "9999999999999999.99"},
		{"three decimals", line(`{"product_id": "a", "price": "1.001", "quantity": 1}`), "order_details[0].price", ""},
		{"exponent", line(`{"product_id": "a", "price": 1e2, "quantity": 1}`), "order_details[0].price", ""},
		{"negative", line(`{"product_id": "a", "price": "-1", "quantity": 1}`), "order_details[0].price", ""},
		{"17 digits", line(`{"product_id": "a", "price": "10000000000000000", "quantity": 1}`), "order_details[0].price", ""},
		{"NaN", line(`{"product_id": "a", "price": "NaN", "quantity": 1}`), "order_details[0].price", ""},
		{"price bool", line(`{"product_id": "a", "price": true, "quantity": 1}`), "order_details[0].price", ""},
		{"quantity zero", line(`{"product_id": "a", "price": "1", "quantity": 0}`), "order_details[0].quantity", ""},
		{"quantity float", line(`{"product_id": "a", "price": "1", "quantity": 1.0}`), "order_details[0].quantity", ""},
		{"quantity string", line(`{"product_id": "a", "price": "1", "quantity": "1"}`), "order_details[0].quantity", ""},
		{"quantity too big", line(`{"product_id": "a", "price": "1", "quantity": 2147483648}`), "order_details[0].quantity", ""},
		{"bad product id", line(`{"product_id": "a/b", "price": "1", "quantity": 1}`), "order_details[0].product_id", ""},
		{"missing product id", line(`{"price": "1", "quantity": 1}`), "order_details[0].product_id: is required", ""},
		{"unknown line field", line(`{"product_id": "a", "price": "1", "quantity": 1, "discount": 5}`), "order_details[0].discount: unknown field", ""},
		{"second line bad", line(ok + `, {"product_id": "b", "price": "x", "quantity": 1}`), "order_details[1].price", ""},
		{"no lines", `{"order_details": []}`, "order_details: must have from 1 to 100 items", ""},
		{"too many lines", line(strings.TrimSuffix(strings.Repeat(ok+",", 101), ",")), "order_details: must have from 1 to 100 items", ""},
		{"not an array", `{"order_details": {}}`, "order_details: must be an array", ""},
		{"unknown top field", `{"order_details": [` + ok + `], "note": "x"}`, "note: unknown field", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, err := decodeNewOrder(mustObject(t, c.body))
			if c.problem == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := lines[0].Price.StringFixed(2); got != c.price {
					t.Fatalf("price %s; want %s", got, c.price)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Fatalf("error %v; want one mentioning %q", err, c.problem)
			}
		})
	}
}

func TestDecodeProduct(t *testing.T) {
	valid := `{"id": "the_odyssey-0.8623041", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`
	cases := []struct{ name, body, problem string }{
		{"valid", valid, ""},
		{"max values", `{"id": "x", "title": "T", "passenger_capacity": 2147483647, "maximum_speed": 0, "in_stock": 0}`, ""},
		{"id too long", strings.Replace(valid, "the_odyssey-0.8623041", strings.Repeat("a", 129), 1), "id:"},
		{"id with colon", strings.Replace(valid, "the_odyssey-0.8623041", "a:b", 1), "id:"},
		{"id empty", strings.Replace(valid, "the_odyssey-0.8623041", "", 1), "id:"},
		{"title blank", strings.Replace(valid, "The Odyssey", "   ", 1), "title:"},
		{"title too long", strings.Replace(valid, "The Odyssey", strings.Repeat("é", 513), 1), "title:"},
		{"capacity string", strings.Replace(valid, "101", `"101"`, 1), "passenger_capacity: must be an integer"},
		{"speed float", strings.Replace(valid, ": 5,", ": 5.5,", 1), "maximum_speed: must be an integer"},
		{"stock negative", strings.Replace(valid, ": 10}", ": -1}", 1), "in_stock: must be an integer from 0"},
		{"stock null", strings.Replace(valid, ": 10}", ": null}", 1), "in_stock: is required"},
		{"all missing", `{}`, "id: is required"},
		// Lenient input that used to pass.
		{"stock minus zero", strings.Replace(valid, ": 10}", ": -0}", 1), "in_stock: must be an integer"},
		{"id dot", strings.Replace(valid, "the_odyssey-0.8623041", ".", 1), "id:"},
		{"id dot dot", strings.Replace(valid, "the_odyssey-0.8623041", "..", 1), "id:"},
		{"title zero-width only", strings.Replace(valid, "The Odyssey", `\u200b\u200c\u200d\ufeff`, 1), "title:"},
		{"title invisible and spaces", strings.Replace(valid, "The Odyssey", "\u2060 \u00a0\u3000", 1), "title:"},
		{"title combining mark only", strings.Replace(valid, "The Odyssey", `\u0301`, 1), "title:"},
		{"title control character", strings.Replace(valid, "The Odyssey", `The\u0000Odyssey`, 1), "title: must not contain control"},
		{"title lone high surrogate", strings.Replace(valid, "The Odyssey", `The \ud800 Odyssey`, 1), "title: must be valid Unicode"},
		{"title lone low surrogate", strings.Replace(valid, "The Odyssey", `\udc00`, 1), "title: must be valid Unicode"},
		{"title reversed pair", strings.Replace(valid, "The Odyssey", `\udc00\ud800`, 1), "title: must be valid Unicode"},
		{"title high surrogate at the end", strings.Replace(valid, "The Odyssey", `Odyssey\ud83d`, 1), "title: must be valid Unicode"},
		// What stays valid.
		{"title surrogate pair", strings.Replace(valid, "The Odyssey", `The Odyssey \ud83d\ude80`, 1), ""},
		{"title emoji with joiner", strings.Replace(valid, "The Odyssey", "👩\u200d🚀", 1), ""},
		{"title escaped backslash u", strings.Replace(valid, "The Odyssey", `back\\ud800slash`, 1), ""},
		{"title replacement character", strings.Replace(valid, "The Odyssey", `\ufffd and �`, 1), ""},
		{"title symbol only", strings.Replace(valid, "The Odyssey", "✈", 1), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeProduct(mustObject(t, c.body))
			if c.problem == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)) {
				t.Fatalf("error %v; want one mentioning %q", err, c.problem)
			}
		})
	}
}

func mustObject(t *testing.T, body string) object {
	t.Helper()
	var o object
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatalf("test body %q: %v", body, err)
	}
	return o
}

func TestCheckContentType(t *testing.T) {
	cases := []struct {
		values []string
		ok     bool
	}{
		{nil, true},
		{[]string{"application/json"}, true},
		{[]string{"application/json; charset=utf-8"}, true},
		{[]string{"application/json; charset=UTF-8"}, true},
		{[]string{"application/merge-patch+json"}, true},
		{[]string{"application/x-www-form-urlencoded"}, true},
		{[]string{"application/x-www-form-urlencoded; charset=utf-8"}, true},
		{[]string{"application/json; charset=iso-8859-1"}, false},
		{[]string{"application/x-www-form-urlencoded; charset=latin1"}, false},
		{[]string{"text/plain"}, false},
		{[]string{"multipart/form-data; boundary=x"}, false},
		{[]string{"application/json;;;="}, false},
		{[]string{"application/json", "application/json"}, false},
	}
	for _, c := range cases {
		err := checkContentType(c.values)
		if (err == nil) != c.ok {
			t.Errorf("Content-Type %q: %v; want ok=%v", c.values, err, c.ok)
		}
		var api *apiError
		if err != nil && (!errors.As(err, &api) || api.status != 415 || api.body.Error != CodeUnsupportedMedia) {
			t.Errorf("Content-Type %q: %v; want 415 %s", c.values, err, CodeUnsupportedMedia)
		}
	}
}

// The rules of a change are the orders module's (orders.UpdatesProblems)
// and of a patch the products module's (products.Patch.Problems): the
// gateway answers with their messages once the fields are read.
func TestDecodeChanges(t *testing.T) {
	cases := []struct {
		name, body, problem string
		decode              func(object) error
	}{
		{"update", `{"order_details": [{"id": 1, "price": "2.50"}, {"id": 2, "quantity": 3}]}`, "", decodeUpdate},
		{"update a line twice", `{"order_details": [{"id": 1, "price": "2.50"}, {"id": 1, "quantity": 3}]}`,
			"order_details[1].id: line 1 is named twice", decodeUpdate},
		{"update sets nothing", `{"order_details": [{"id": 1}]}`, "order_details[0]: must set price, quantity or both", decodeUpdate},
		{"update sets nulls", `{"order_details": [{"id": 1, "price": null, "quantity": null}]}`,
			"order_details[0]: must set price, quantity or both", decodeUpdate},
		{"update price 0.004", `{"order_details": [{"id": 1, "price": 0.004}]}`, "order_details[0].price: must be a decimal", decodeUpdate},
		{"update no lines", `{"order_details": []}`, "order_details: must have from 1 to 100 items", decodeUpdate},
		{"patch", `{"in_stock": 0}`, "", decodePatchOnly},
		{"patch of nulls", `{"title": null, "in_stock": null}`, "body: must set at least one of", decodePatchOnly},
		{"patch nothing", `{}`, "body: must set at least one of", decodePatchOnly},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(mustObject(t, c.body))
			if c.problem == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)) {
				t.Fatalf("error %v; want one mentioning %q", err, c.problem)
			}
		})
	}
}

func decodeUpdate(o object) error    { _, err := decodeOrderUpdate(o); return err }
func decodePatchOnly(o object) error { _, err := decodePatch(o); return err }
