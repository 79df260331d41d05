package orders

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/products"
)

func TestStockDelta(t *testing.T) {
	lines := []Line{
		{ID: 1, ProductID: "a", Quantity: 2},
		{ID: 2, ProductID: "b", Quantity: 5},
		{ID: 3, ProductID: "a", Quantity: 1},
	}
	with := func(q1, q2, q3 int64) []Line {
		out := append([]Line(nil), lines...)
		out[0].Quantity, out[1].Quantity, out[2].Quantity = q1, q2, q3
		return out
	}
	cases := []struct {
		name       string
		after      []Line
		take, give string
	}{
		{"unchanged", with(2, 5, 1), "[]", "[]"},
		{"more of a", with(4, 5, 1), "[{a 2 }]", "[]"},
		{"less of b", with(2, 3, 1), "[]", "[{b 2 }]"},
		{"both ways", with(3, 1, 1), "[{a 1 }]", "[{b 4 }]"},
		{"lines of one product net out", with(3, 5, 0), "[]", "[]"},
		{"net increase over two lines", with(1, 5, 4), "[{a 2 }]", "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			take, give := stockDelta(lines, c.after)
			if got := fmt.Sprint(nonNil(take)); got != c.take {
				t.Errorf("take %s; want %s", got, c.take)
			}
			if got := fmt.Sprint(nonNil(give)); got != c.give {
				t.Errorf("give %s; want %s", got, c.give)
			}
		})
	}
}

// TestStockDeltaKeepsIncarnations: lines of two incarnations of one
// product never net out, and each delta names its incarnation.
func TestStockDeltaKeepsIncarnations(t *testing.T) {
	before := []Line{{ID: 1, ProductID: "a", Quantity: 2, Incarnation: "old"}, {ID: 2, ProductID: "a", Quantity: 2, Incarnation: "new"}}
	after := []Line{{ID: 1, ProductID: "a", Quantity: 1, Incarnation: "old"}, {ID: 2, ProductID: "a", Quantity: 3, Incarnation: "new"}}
	take, give := stockDelta(before, after)
	if fmt.Sprint(take) != "[{a 1 new}]" || fmt.Sprint(give) != "[{a 1 old}]" {
		t.Fatalf("take %v, give %v; want [{a 1 new}] and [{a 1 old}]", take, give)
	}
}

func nonNil(l []products.Line) []products.Line {
	if l == nil {
		return []products.Line{}
	}
	return l
}

func TestMergeLines(t *testing.T) {
	got := products.MergeLines([]products.Line{{ProductID: "b", Quantity: 1}, {ProductID: "a", Quantity: 2}, {ProductID: "b", Quantity: 3}})
	if fmt.Sprint(got) != "[{b 4 } {a 2 }]" {
		t.Fatalf("MergeLines = %v; want [{b 4 } {a 2 }] (first-appearance order)", got)
	}
}

func TestApplyUpdates(t *testing.T) {
	o := Order{ID: 7, Lines: []Line{{ID: 1, ProductID: "a", Price: decimal.RequireFromString("1"), Quantity: 1}, {ID: 4, ProductID: "b", Quantity: 2}}}
	q, p := int64(5), decimal.RequireFromString("2.50")
	got, err := ApplyUpdates(o, []LineUpdate{{ID: 4, Quantity: &q}, {ID: 1, Price: &p}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Lines[0].Price.StringFixed(2) != "2.50" || got.Lines[0].Quantity != 1 || got.Lines[1].Quantity != 5 {
		t.Fatalf("applyUpdates = %+v", got)
	}
	if o.Lines[1].Quantity != 2 {
		t.Fatal("applyUpdates changed its input")
	}
	_, err = ApplyUpdates(o, []LineUpdate{{ID: 1, Quantity: &q}, {ID: 3, Quantity: &q}})
	var nl *LineNotFoundError
	if !errors.As(err, &nl) || nl.LineID != 3 || nl.Index != 1 || nl.OrderID != 7 {
		t.Fatalf("unknown line error = %v; want LineNotFoundError{7, 3, index 1}", err)
	}
}

// Lines kept from the old shop that give nothing back (a quantity below
// 1, an id no product can have) are left out of a restock, which the
// products module would refuse; the others keep their quantities.
func TestGivenBack(t *testing.T) {
	lines := []products.Line{
		{ProductID: "a", Quantity: 2, Incarnation: "i1"},
		{ProductID: "b", Quantity: 0},
		{ProductID: "c", Quantity: -3},
		{ProductID: "not an id", Quantity: 1},
		{ProductID: "", Quantity: 1},
		{ProductID: "d", Quantity: 1},
	}
	want := []products.Line{{ProductID: "a", Quantity: 2, Incarnation: "i1"}, {ProductID: "d", Quantity: 1}}
	if got := givenBack(lines); !reflect.DeepEqual(got, want) {
		t.Errorf("givenBack = %+v; want %+v", got, want)
	}
}

// A price is read exactly or refused: never rounded.
func TestParsePrice(t *testing.T) {
	for text, want := range map[string]string{
		"0": "0.00", "5": "5.00", "1.5": "1.50", "100000.99": "100000.99", "9999999999999999.99": "9999999999999999.99",
		"0.004": "", "1.001": "", "-1": "", "01": "", "1e2": "", "+1": "", "10000000000000000": "", "": "", " 1": "", "NaN": "",
	} {
		d, problem := ParsePrice(text)
		switch {
		case want == "" && problem == "":
			t.Errorf("ParsePrice(%q) = %s; want it refused", text, d)
		case want != "" && (problem != "" || d.StringFixed(2) != want):
			t.Errorf("ParsePrice(%q) = %s, %q; want %s", text, d, problem, want)
		}
		if problem == "" && PriceProblem(d) != "" {
			t.Errorf("PriceProblem(%s) = %q for a price ParsePrice reads", d, PriceProblem(d))
		}
	}
}
