package orders

// The rules of an order placed or changed, wherever the request comes
// from: the REST API (the gateway reads the fields from a JSON document)
// or another process calling the orders module (ordersrpc). Each rule
// answers with the problem it finds ("" when there is none), phrased as
// the API's validation messages phrase it after the field's name; the
// rules of a line's product id and counts are the products module's
// (products.IDProblem, products.CountProblem).

import (
	"fmt"
	"regexp"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/products"
)

const (
	// MaxLines bounds the lines of an order placed, and the line updates
	// of one change.
	MaxLines = 100
	// MaxKeyLength bounds an idempotency key.
	MaxKeyLength = 255
	// MaxPage bounds the orders of one page of a listing.
	MaxPage = products.MaxPage
)

// priceLiteral is a price as the API takes it: at least 0, at most 16
// integer digits and 2 decimals, no sign, exponent or leading zero.
var priceLiteral = regexp.MustCompile(`^(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?$`)

// ParsePrice reads a price written in decimal (the text of a JSON string
// or number, or of a module call). A price with more decimals is refused,
// never rounded.
func ParsePrice(text string) (decimal.Decimal, string) {
	if !priceLiteral.MatchString(text) {
		return decimal.Decimal{}, "must be a decimal of at least 0 with at most 16 integer digits and 2 decimals"
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return decimal.Decimal{}, "must be a decimal"
	}
	return d, ""
}

// PriceProblem says what is wrong with a price (see ParsePrice).
func PriceProblem(d decimal.Decimal) string {
	_, problem := ParsePrice(d.String()) // fixed point, never an exponent
	return problem
}

// LinesProblem says what is wrong with the number of lines of an order
// placed, or of line updates in one change.
func LinesProblem(n int) string {
	if n < 1 || n > MaxLines {
		return fmt.Sprintf("must have from 1 to %d items", MaxLines)
	}
	return ""
}

// KeyProblem says what is wrong with an idempotency key: it must be 1 to
// MaxKeyLength visible ASCII characters.
func KeyProblem(key string) string {
	bad := len(key) == 0 || len(key) > MaxKeyLength
	for i := 0; i < len(key) && !bad; i++ {
		bad = key[i] < 0x21 || key[i] > 0x7e
	}
	if bad {
		return fmt.Sprintf("must be 1 to %d visible ASCII characters", MaxKeyLength)
	}
	return ""
}

// ValidID reports whether id can be an order's: orders are numbered from
// 1 to products.MaxCount.
func ValidID(id int64) bool { return id >= 1 && id <= products.MaxCount }

// NewLinesProblems returns every rule the lines of an order being placed
// break, as "order_details[i].field: problem" (nil when they are valid).
func NewLinesProblems(lines []NewLine) []string {
	if p := LinesProblem(len(lines)); p != "" {
		return []string{"order_details: " + p}
	}
	var out []string
	for i, l := range lines {
		out = append(out, LineProblems(fmt.Sprintf("order_details[%d].", i), l)...)
	}
	return out
}

// LineProblems returns every rule one order line breaks, as
// prefix+"field: problem": its product id, its price and its quantity.
func LineProblems(prefix string, l NewLine) []string {
	return lineProblems(prefix, l, PriceProblem(l.Price))
}

// ParseLine reads an order line whose price is text, as the module calls
// and the dump reader carry it: the line, and every rule it breaks as
// LineProblems gives them (a price that is no price is one of them). The
// API, the module calls and the dump reader hold lines to the same rules
// with the same messages.
func ParseLine(prefix, productID, price string, quantity int64) (NewLine, []string) {
	p, problem := ParsePrice(price)
	l := NewLine{ProductID: productID, Price: p, Quantity: quantity}
	return l, lineProblems(prefix, l, problem)
}

func lineProblems(prefix string, l NewLine, priceProblem string) []string {
	var out []string
	add := field(&out, prefix)
	add("product_id", products.IDProblem(l.ProductID))
	add("price", priceProblem)
	add("quantity", products.CountProblem(l.Quantity, 1))
	return out
}

// UpdatesProblems returns every rule the line updates of one change
// break, as "order_details[i].field: problem" (nil when they are valid):
// each names a line once, and sets its price, its quantity or both.
func UpdatesProblems(updates []LineUpdate) []string {
	if p := LinesProblem(len(updates)); p != "" {
		return []string{"order_details: " + p}
	}
	var out []string
	seen := make(map[int64]bool, len(updates))
	for i, u := range updates {
		at := fmt.Sprintf("order_details[%d]", i)
		add := field(&out, at+".")
		add("id", products.CountProblem(u.ID, 1))
		if seen[u.ID] {
			add("id", fmt.Sprintf("line %d is named twice", u.ID))
		}
		seen[u.ID] = true
		if u.Price != nil {
			add("price", PriceProblem(*u.Price))
		}
		if u.Quantity != nil {
			add("quantity", products.CountProblem(*u.Quantity, 1))
		}
		if u.Price == nil && u.Quantity == nil {
			out = append(out, at+": must set price, quantity or both")
		}
	}
	return out
}

// field returns a function that adds "prefix+name: problem" to out when
// problem is not "".
func field(out *[]string, prefix string) func(name, problem string) {
	return func(name, problem string) {
		if problem != "" {
			*out = append(*out, prefix+name+": "+problem)
		}
	}
}
