package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Limits of the request documents.
const (
	maxTitleLength = 512
	maxLines       = 100
	// maxCount bounds every integer field; it fits every store exactly
	// (PostgreSQL integer, Lua numbers, SQLite INTEGER).
	maxCount = math.MaxInt32
	// maxProblems and maxNameLength bound an error message, whatever the
	// request: a message names at most maxProblems problems and quotes at
	// most maxNameLength bytes of an unknown field's name.
	maxProblems   = 20
	maxNameLength = 64
)

// readJSON reads a request body of at most limit bytes and parses it as a
// JSON object. It fails with UNSUPPORTED_MEDIA_TYPE for a content type
// that is not JSON, BAD_REQUEST for invalid UTF-8 or invalid JSON,
// VALIDATION_ERROR when the JSON is not an object or names a field twice,
// and PAYLOAD_TOO_LARGE past the limit.
func readJSON(c echo.Context, limit int64) (object, error) {
	req := c.Request()
	if err := checkContentType(req.Header.Values(echo.HeaderContentType)); err != nil {
		return nil, err
	}
	if req.ContentLength > limit {
		return nil, errPayloadTooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errPayloadTooLarge(limit)
		}
		return nil, badRequest("could not read the request body")
	}
	if !utf8.Valid(body) {
		return nil, badRequest("request body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return nil, badRequest("request body is not valid JSON")
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, validationError("body: must be a JSON object")
	}
	var obj object
	if err := json.Unmarshal(body, &obj); err != nil {
		var dup *duplicateError
		if errors.As(err, &dup) {
			return nil, validationError(fieldName(dup.name) + ": is named twice")
		}
		return nil, badRequest("request body is not valid JSON")
	}
	return obj, nil
}

// checkContentType accepts a JSON body's declared type: application/json
// (or a +json type) in UTF-8, and, as the old gateway did, no type at all
// or application/x-www-form-urlencoded, which is what `curl -d` sends
// when the command gives none (the old documentation's examples do).
func checkContentType(values []string) error {
	switch len(values) {
	case 0:
		return nil
	case 1:
	default:
		return unsupportedMediaType("Content-Type is given %d times; give it once", len(values))
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil {
		return unsupportedMediaType("Content-Type %q is not a media type; send application/json", clip(values[0]))
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "application/x-www-form-urlencoded" {
		return unsupportedMediaType("Content-Type %s is not JSON; send application/json", clip(mt))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return unsupportedMediaType("charset %s is not supported; send UTF-8", clip(cs))
	}
	return nil
}

// object is a JSON object whose fields are read and checked one by one.
type object map[string]json.RawMessage

// duplicateError names a field given twice in one object. Such a document
// is refused: parsers disagree on which value wins (encoding/json takes
// the last, many others the first), so a proxy or validator in front of
// the server could check one value while the server acted on the other.
type duplicateError struct{ name string }

func (e *duplicateError) Error() string { return "duplicate field " + strconv.Quote(e.name) }

// errNotObject means a JSON value that should be an object is not.
var errNotObject = errors.New("not a JSON object")

// UnmarshalJSON reads a JSON object, refusing duplicate field names. JSON
// null leaves o nil, as encoding/json does for maps.
func (o *object) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errNotObject
	}
	out := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := tok.(string)
		if !ok {
			return errNotObject
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		if _, dup := out[name]; dup {
			return &duplicateError{name: name}
		}
		out[name] = value
	}
	*o = out
	return nil
}

// fieldName is a field name as error messages quote it: at most
// maxNameLength bytes of it.
func fieldName(name string) string {
	if len(name) <= maxNameLength {
		return name
	}
	cut := maxNameLength
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}

// fields collects the problems found in a request document.
type fields struct{ problems []string }

func (f *fields) add(path, format string, args ...any) {
	f.problems = append(f.problems, path+": "+fmt.Sprintf(format, args...))
}

func (f *fields) err() error {
	if len(f.problems) == 0 {
		return nil
	}
	problems := f.problems
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems:maxProblems], fmt.Sprintf("and %d more problems", len(f.problems)-maxProblems))
	}
	return validationError(strings.Join(problems, "; "))
}

// only reports every field of o not in allowed, in name order.
func (f *fields) only(o object, prefix string, allowed ...string) {
	var unknown []string
	for name := range o {
		if !slices.Contains(allowed, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		f.add(prefix+fieldName(name), "unknown field")
	}
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// isSet reports whether o has the field with a value other than null.
func isSet(o object, name string) bool {
	raw, ok := o[name]
	return ok && !isNull(raw)
}

// str reads a string field.
func (f *fields) str(o object, prefix, name string, required bool) (string, bool) {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		if required {
			f.add(prefix+name, "is required")
		}
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f.add(prefix+name, "must be a string")
		return "", false
	}
	if loneSurrogate(raw) {
		f.add(prefix+name, "must be valid Unicode: it has an unpaired surrogate escape")
		return "", false
	}
	return s, true
}

// loneSurrogate reports whether the JSON string raw has a \uD800-\uDFFF
// escape that is not half of a surrogate pair (encoding/json silently
// decodes one as U+FFFD).
func loneSurrogate(raw json.RawMessage) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // another escape: skip its character
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if lo, ok := hex4(i + 6); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// integerLiteral is a JSON integer; "-0" is not one of ours.
var integerLiteral = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)

// count reads an integer field in [lowest, maxCount]. JSON strings and
// numbers with a fraction or exponent are refused.
func (f *fields) count(o object, prefix, name string, lowest int64, required bool) (int64, bool) {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		if required {
			f.add(prefix+name, "is required")
		}
		return 0, false
	}
	if !integerLiteral.Match(raw) {
		f.add(prefix+name, "must be an integer")
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < lowest || n > maxCount {
		f.add(prefix+name, "must be an integer from %d to %d", lowest, maxCount)
		return 0, false
	}
	return n, true
}

// productID reads a product id field.
func (f *fields) productID(o object, prefix, name string) string {
	id, ok := f.str(o, prefix, name, true)
	if ok && !products.ValidID(id) {
		f.add(prefix+name, "must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", products.MaxIDLength)
	}
	return id
}

// title reads a product title field: at most 512 characters, no control
// characters, and at least one visible one (a letter, digit, punctuation
// or symbol: spaces, zero-width and other invisible characters alone are
// not a title).
func (f *fields) title(o object, prefix string, required bool) (string, bool) {
	t, ok := f.str(o, prefix, "title", required)
	if !ok {
		return "", false
	}
	visible := false
	for _, r := range t {
		if unicode.IsControl(r) {
			f.add(prefix+"title", "must not contain control characters")
			return "", false
		}
		visible = visible || unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}
	if !visible || utf8.RuneCountInString(t) > maxTitleLength {
		f.add(prefix+"title", "must be a string of 1 to %d characters with at least one visible character", maxTitleLength)
		return "", false
	}
	return t, true
}

var priceLiteral = regexp.MustCompile(`^(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?$`)

// price reads a price given as a JSON string ("99.99") or number (99.99):
// at least 0, at most 16 integer digits and 2 decimals.
func (f *fields) price(o object, prefix, name string, required bool) (decimal.Decimal, bool) {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		if required {
			f.add(prefix+name, "is required")
		}
		return decimal.Decimal{}, false
	}
	text := string(raw)
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(raw, &text); err != nil {
			f.add(prefix+name, "must be a decimal string or number")
			return decimal.Decimal{}, false
		}
	}
	if !priceLiteral.MatchString(text) {
		f.add(prefix+name, "must be a decimal of at least 0 with at most 16 integer digits and 2 decimals")
		return decimal.Decimal{}, false
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		f.add(prefix+name, "must be a decimal")
		return decimal.Decimal{}, false
	}
	return d, true
}

// array reads an array-of-objects field with between 1 and most items.
func (f *fields) array(o object, prefix, name string, most int) ([]object, bool) {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		f.add(prefix+name, "is required")
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		f.add(prefix+name, "must be an array")
		return nil, false
	}
	if len(items) < 1 || len(items) > most {
		f.add(prefix+name, "must have from 1 to %d items", most)
		return nil, false
	}
	out := make([]object, len(items))
	for i, item := range items {
		path := fmt.Sprintf("%s%s[%d]", prefix, name, i)
		err := json.Unmarshal(item, &out[i])
		var dup *duplicateError
		switch {
		case errors.As(err, &dup):
			f.add(path+"."+fieldName(dup.name), "is named twice")
			return nil, false
		case err != nil || out[i] == nil:
			f.add(path, "must be an object")
			return nil, false
		}
	}
	return out, true
}

// decodeProduct turns a create-product document into a Product.
func decodeProduct(o object) (products.Product, error) {
	var f fields
	f.only(o, "", "id", "title", "passenger_capacity", "maximum_speed", "in_stock")
	p := products.Product{ID: f.productID(o, "", "id")}
	p.Title, _ = f.title(o, "", true)
	p.PassengerCapacity, _ = f.count(o, "", "passenger_capacity", 0, true)
	p.MaximumSpeed, _ = f.count(o, "", "maximum_speed", 0, true)
	p.InStock, _ = f.count(o, "", "in_stock", 0, true)
	return p, f.err()
}

// decodePatch turns a PATCH document into a products.Patch.
func decodePatch(o object) (products.Patch, error) {
	var f fields
	f.only(o, "", "title", "passenger_capacity", "maximum_speed", "in_stock")
	var p products.Patch
	if t, ok := f.title(o, "", false); ok {
		p.Title = &t
	}
	for _, c := range []struct {
		name string
		dst  **int64
	}{
		{"passenger_capacity", &p.PassengerCapacity}, {"maximum_speed", &p.MaximumSpeed}, {"in_stock", &p.InStock},
	} {
		if n, ok := f.count(o, "", c.name, 0, false); ok {
			*c.dst = &n
		}
	}
	// A patch of nulls only would change nothing: null is not a value of
	// any of these fields.
	if len(f.problems) == 0 && p.Title == nil && p.PassengerCapacity == nil && p.MaximumSpeed == nil && p.InStock == nil {
		f.add("body", "must set at least one of title, passenger_capacity, maximum_speed, in_stock")
	}
	return p, f.err()
}

// decodeNewOrder turns a create-order document into order lines.
func decodeNewOrder(o object) ([]orders.NewLine, error) {
	var f fields
	f.only(o, "", "order_details")
	items, ok := f.array(o, "", "order_details", maxLines)
	if !ok {
		return nil, f.err()
	}
	lines := make([]orders.NewLine, len(items))
	for i, item := range items {
		prefix := fmt.Sprintf("order_details[%d].", i)
		f.only(item, prefix, "product_id", "price", "quantity")
		lines[i].ProductID = f.productID(item, prefix, "product_id")
		lines[i].Price, _ = f.price(item, prefix, "price", true)
		lines[i].Quantity, _ = f.count(item, prefix, "quantity", 1, true)
	}
	return lines, f.err()
}

// decodeOrderUpdate turns a PUT document into line updates.
func decodeOrderUpdate(o object) ([]orders.LineUpdate, error) {
	var f fields
	f.only(o, "", "order_details")
	items, ok := f.array(o, "", "order_details", maxLines)
	if !ok {
		return nil, f.err()
	}
	updates := make([]orders.LineUpdate, len(items))
	seen := make(map[int64]bool, len(items))
	for i, item := range items {
		prefix := fmt.Sprintf("order_details[%d].", i)
		f.only(item, prefix, "id", "price", "quantity")
		id, ok := f.count(item, prefix, "id", 1, true)
		if ok && seen[id] {
			f.add(prefix+"id", "line %d is named twice", id)
		}
		seen[id] = true
		updates[i].ID = id
		if p, ok := f.price(item, prefix, "price", false); ok {
			updates[i].Price = &p
		}
		if q, ok := f.count(item, prefix, "quantity", 1, false); ok {
			updates[i].Quantity = &q
		}
		if !isSet(item, "price") && !isSet(item, "quantity") {
			f.add(prefix[:len(prefix)-1], "must set price, quantity or both")
		}
	}
	return updates, f.err()
}
