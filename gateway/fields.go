package gateway

// Reading the fields of a request document: each reader checks one kind of
// field and collects what is wrong with it, so that one answer names every
// problem.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Limits of the request documents. The rules of the fields are the
// modules' (products.TitleProblem, products.ParseCount, orders.ParsePrice,
// orders.LinesProblem, ...), which their RPC handlers and every import
// apply too; the gateway adds the rules of JSON (types, null, unknown and
// duplicate fields).
const (
	maxTitleLength = products.MaxTitleLength
	// maxCount bounds every integer field.
	maxCount = products.MaxCount
	// maxNameLength bounds an error message, whatever the request: it
	// quotes at most maxNameLength bytes of an unknown field's name (and
	// errs.Problems names at most errs.MaxProblems problems).
	maxNameLength = 64
)

// fields collects the problems found in a request document.
type fields struct{ problems []string }

func (f *fields) add(path, format string, args ...any) {
	f.problems = append(f.problems, path+": "+fmt.Sprintf(format, args...))
}

func (f *fields) err() error {
	if err := errs.Problems(f.problems); err != nil {
		return validationError(err.Error())
	}
	return nil
}

// only reports every field of o not in allowed, in name order.
func (f *fields) only(o object, prefix string, allowed ...string) {
	var unknown []string
	for i := range o {
		if !isOneOf(o[i].name, allowed) {
			unknown = append(unknown, string(o[i].name))
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		f.add(prefix+fieldName(name), "unknown field")
	}
}

func isOneOf(name []byte, allowed []string) bool {
	for _, a := range allowed {
		if string(name) == a {
			return true
		}
	}
	return false
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// jsonString returns the value of the JSON string raw, or false when raw
// is not a string. A string without escapes is its bytes (a valid body
// is valid UTF-8 without control characters); one with escapes is
// unescaped by encoding/json.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// str reads a string field.
func (f *fields) str(o object, prefix, name string, required bool) (string, bool) {
	raw, ok := o.get(name)
	if !ok || isNull(raw) {
		if required {
			f.add(prefix+name, "is required")
		}
		return "", false
	}
	s, ok := jsonString(raw)
	if !ok {
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

// count reads an integer field in [lowest, maxCount]. JSON strings and
// numbers with a fraction or exponent are refused.
func (f *fields) count(o object, prefix, name string, lowest int64, required bool) (int64, bool) {
	raw, ok := o.get(name)
	if !ok || isNull(raw) {
		if required {
			f.add(prefix+name, "is required")
		}
		return 0, false
	}
	n, problem := products.ParseCount(string(raw), lowest)
	if problem != "" {
		f.add(prefix+name, "%s", problem)
		return 0, false
	}
	return n, true
}

// productID reads a product id field.
func (f *fields) productID(o object, prefix, name string) string {
	id, ok := f.str(o, prefix, name, true)
	if problem := products.IDProblem(id); ok && problem != "" {
		f.add(prefix+name, "%s", problem)
	}
	return id
}

// title reads a product title field (see products.TitleProblem).
func (f *fields) title(o object, prefix string, required bool) (string, bool) {
	t, ok := f.str(o, prefix, "title", required)
	if !ok {
		return "", false
	}
	if problem := products.TitleProblem(t); problem != "" {
		f.add(prefix+"title", "%s", problem)
		return "", false
	}
	return t, true
}

// price reads a price given as a JSON string ("99.99") or number (99.99)
// (see orders.ParsePrice).
func (f *fields) price(o object, prefix, name string, required bool) (decimal.Decimal, bool) {
	raw, ok := o.get(name)
	if !ok || isNull(raw) {
		if required {
			f.add(prefix+name, "is required")
		}
		return decimal.Decimal{}, false
	}
	text := string(raw)
	if raw[0] == '"' {
		var ok bool
		if text, ok = jsonString(raw); !ok {
			f.add(prefix+name, "must be a decimal string or number")
			return decimal.Decimal{}, false
		}
	}
	d, problem := orders.ParsePrice(text)
	if problem != "" {
		f.add(prefix+name, "%s", problem)
		return decimal.Decimal{}, false
	}
	return d, true
}

// array reads an array-of-objects field whose number of items count
// checks (it says what is wrong with it, or "").
func (f *fields) array(o object, prefix, name string, count func(int) string) ([]object, bool) {
	raw, ok := o.get(name)
	if !ok || isNull(raw) {
		f.add(prefix+name, "is required")
		return nil, false
	}
	items, ok := parseArray(raw)
	if !ok {
		f.add(prefix+name, "must be an array")
		return nil, false
	}
	if problem := count(len(items)); problem != "" {
		f.add(prefix+name, "%s", problem)
		return nil, false
	}
	out := make([]object, len(items))
	for i, item := range items {
		var err error
		if out[i], err = parseObject(item); err != nil {
			path := prefix + name + "[" + strconv.Itoa(i) + "]"
			var dup *duplicateError
			if errors.As(err, &dup) {
				f.add(path+"."+fieldName(dup.name), "is named twice")
			} else {
				f.add(path, "must be an object")
			}
			return nil, false
		}
	}
	return out, true
}
