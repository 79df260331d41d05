package products

// The rules every product obeys, wherever it comes from: the API, an
// import of the old shop's Redis hashes or an airship dump. Each rule
// answers with the problem it finds ("" when there is none), phrased as
// the API's validation messages phrase it after the field's name.

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxTitleLength is the longest title, in characters.
	MaxTitleLength = 512
	// MaxCount bounds passenger_capacity, maximum_speed, in_stock and
	// every other count; it fits every store exactly (PostgreSQL integer,
	// Lua numbers, SQLite INTEGER).
	MaxCount = math.MaxInt32
)

// IDProblem says what is wrong with a product id (see ValidID).
func IDProblem(id string) string {
	if ValidID(id) {
		return ""
	}
	return fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", MaxIDLength)
}

// TitleProblem says what is wrong with a title: it must have at most
// MaxTitleLength characters, no control characters, and at least one
// visible one (a letter, digit, punctuation or symbol: spaces, zero-width
// and other invisible characters alone are not a title).
func TitleProblem(t string) string {
	visible := false
	for _, r := range t {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
		visible = visible || unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}
	if !visible || !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxTitleLength {
		return fmt.Sprintf("must be a string of 1 to %d characters with at least one visible character", MaxTitleLength)
	}
	return ""
}

// integerLiteral is an integer in decimal as JSON writes it; "-0", a
// sign, leading zeros, a fraction or an exponent are not.
var integerLiteral = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)

// ParseCount reads a count written in decimal (as a JSON integer or the
// text of a Redis hash field) that must lie in [lowest, MaxCount].
func ParseCount(text string, lowest int64) (int64, string) {
	if !integerLiteral.MatchString(text) {
		return 0, "must be an integer"
	}
	// Past int64's range ParseInt gives its bound, which is past the
	// count's range too.
	n, _ := strconv.ParseInt(text, 10, 64)
	if problem := CountProblem(n, lowest); problem != "" {
		return 0, problem
	}
	return n, ""
}

// CountProblem says what is wrong with a count that must lie in
// [lowest, MaxCount].
func CountProblem(n, lowest int64) string {
	if n < lowest || n > MaxCount {
		return fmt.Sprintf("must be an integer from %d to %d", lowest, MaxCount)
	}
	return ""
}

// Problems returns every rule p breaks, as "field: problem" (nil when p
// is valid), the incarnation's included (see IncarnationProblem).
func (p Product) Problems() []string {
	var out []string
	add := func(field, problem string) {
		if problem != "" {
			out = append(out, field+": "+problem)
		}
	}
	add("id", IDProblem(p.ID))
	add("title", TitleProblem(p.Title))
	add("passenger_capacity", CountProblem(p.PassengerCapacity, 0))
	add("maximum_speed", CountProblem(p.MaximumSpeed, 0))
	add("in_stock", CountProblem(p.InStock, 0))
	add("incarnation", IncarnationProblem(p.Incarnation))
	return out
}

// Problems returns every rule a patch breaks, as "field: problem" (nil
// when it is valid): each field it sets obeys the rule of a product's
// field, and it sets at least one.
func (p Patch) Problems() []string {
	var out []string
	add := func(field, problem string) {
		if problem != "" {
			out = append(out, field+": "+problem)
		}
	}
	if p.Title != nil {
		add("title", TitleProblem(*p.Title))
	}
	for _, c := range []struct {
		name string
		n    *int64
	}{{"passenger_capacity", p.PassengerCapacity}, {"maximum_speed", p.MaximumSpeed}, {"in_stock", p.InStock}} {
		if c.n != nil {
			add(c.name, CountProblem(*c.n, 0))
		}
	}
	if p.Title == nil && p.PassengerCapacity == nil && p.MaximumSpeed == nil && p.InStock == nil {
		add("body", "must set at least one of title, passenger_capacity, maximum_speed, in_stock")
	}
	return out
}

// Limits of the calls that move stock and read products in bulk.
const (
	// MaxReservationLines bounds the lines of a reservation: the products
	// of one order placed, or of one change to an order, which the API
	// bounds to 100 lines.
	MaxReservationLines = 100
	// MaxRestockLines bounds the lines of one Restock: the products of an
	// order given back when it is deleted. Orders imported from the old
	// shop or from a dump may have more lines than the API lets an order
	// have; no order has this many.
	MaxRestockLines = 10_000
	// MaxPage bounds the products of one List page, and the ids of one
	// GetMany.
	MaxPage = 1000
	// MaxExpired bounds the reservations of one Expired call (the sweep
	// asks for 100 at a time).
	MaxExpired = 100
)

// LinesProblems returns every rule the lines of a stock call break, as
// "lines[i].field: problem" (nil when they are valid): from least to most
// lines, each naming a valid product id with a valid incarnation. A
// line's quantity is at least 1; it may exceed MaxCount, up to most ×
// MaxCount, since a call merges the lines of an order that name the same
// product (MergeLines).
func LinesProblems(lines []Line, least, most int) []string {
	if len(lines) < least || len(lines) > most {
		return []string{fmt.Sprintf("lines: must have from %d to %d items", least, most)}
	}
	var out []string
	for i, l := range lines {
		at := fmt.Sprintf("lines[%d].", i)
		if p := IDProblem(l.ProductID); p != "" {
			out = append(out, at+"product_id: "+p)
		}
		if l.Quantity < 1 || l.Quantity > int64(most)*MaxCount {
			out = append(out, fmt.Sprintf("%squantity: must be an integer from 1 to %d", at, int64(most)*MaxCount))
		}
		if p := IncarnationProblem(l.Incarnation); p != "" {
			out = append(out, at+"incarnation: "+p)
		}
	}
	return out
}

// CallIDProblem says what is wrong with the id of a reservation or a
// restock, which makes the call idempotent: 1 to 64 visible ASCII
// characters (the orders module uses UUIDs).
func CallIDProblem(id string) string {
	if id == "" || IncarnationProblem(id) != "" {
		return "must be 1 to 64 visible ASCII characters"
	}
	return ""
}

// Problems returns every rule a reservation breaks, as "field: problem"
// (nil when it is valid). Reserve (taking) needs a deadline and at least
// one line; Commit and Release name a reservation that was taken, whose
// lines the sweep may have found gone.
func (r Reservation) Problems(taking bool) []string {
	var out []string
	if p := CallIDProblem(r.ID); p != "" {
		out = append(out, "id: "+p)
	}
	least := 0
	if taking {
		least = 1
		if r.Deadline.IsZero() {
			out = append(out, "deadline: must be set")
		}
	}
	return append(out, LinesProblems(r.Lines, least, MaxReservationLines)...)
}

// IncarnationProblem says what is wrong with an incarnation kept outside
// a store (a dump): it is empty (none) or 1 to 64 visible ASCII
// characters.
func IncarnationProblem(inc string) string {
	if len(inc) > 64 {
		return "must be at most 64 visible ASCII characters"
	}
	for i := 0; i < len(inc); i++ {
		if inc[i] <= ' ' || inc[i] > '~' {
			return "must be at most 64 visible ASCII characters"
		}
	}
	return ""
}
