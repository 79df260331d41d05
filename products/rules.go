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
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < lowest || n > MaxCount {
		return 0, fmt.Sprintf("must be an integer from %d to %d", lowest, MaxCount)
	}
	return n, ""
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
	for _, c := range []struct {
		name string
		n    int64
	}{{"passenger_capacity", p.PassengerCapacity}, {"maximum_speed", p.MaximumSpeed}, {"in_stock", p.InStock}} {
		if c.n < 0 || c.n > MaxCount {
			add(c.name, fmt.Sprintf("must be an integer from 0 to %d", MaxCount))
		}
	}
	add("incarnation", IncarnationProblem(p.Incarnation))
	return out
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
