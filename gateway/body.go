package gateway

// Reading a request body: one JSON object, of a JSON content type, within
// the size limit, with no field named twice.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
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
	body, err := readBody(c, limit)
	if err != nil {
		return nil, err
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
	obj, err := parseObject(body)
	if err != nil {
		var dup *duplicateError
		if errors.As(err, &dup) {
			return nil, validationError(fieldName(dup.name) + ": is named twice")
		}
		return nil, badRequest("request body is not valid JSON")
	}
	return obj, nil
}

// readBody reads a request body of at most limit bytes. A body of known
// length (Content-Length, at most limit: readJSON checks) is read into a
// buffer of that size; one of unknown length (chunked) through
// http.MaxBytesReader, which stops it at the limit.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	req := c.Request()
	if n := req.ContentLength; n >= 0 {
		// One byte more than declared tells a body longer than its
		// Content-Length, which net/http never hands over.
		body := make([]byte, n+1)
		if _, err := io.ReadFull(req.Body, body[:n]); err != nil {
			return nil, badRequest("could not read the request body")
		}
		if m, _ := req.Body.Read(body[n:]); m > 0 {
			return nil, badRequest("request body is longer than its Content-Length")
		}
		return body[:n], nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errPayloadTooLarge(limit)
		}
		return nil, badRequest("could not read the request body")
	}
	return body, nil
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

// object is a JSON object whose fields are read and checked one by one:
// its members in document order, each value the raw JSON of it (a slice
// of the request body, never a copy). A JSON null is a nil object; {} is
// an empty, non-nil one.
type object []member

// member is one name and value of an object, the name unescaped.
type member struct {
	name  []byte
	value json.RawMessage
}

// get returns the value of the field named name.
func (o object) get(name string) (json.RawMessage, bool) {
	for i := range o {
		if string(o[i].name) == name {
			return o[i].value, true
		}
	}
	return nil, false
}

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
	obj, err := parseObject(b)
	if err != nil {
		return err
	}
	*o = obj
	return nil
}

// parseObject reads the members of the JSON object b in one pass, refusing
// duplicate names (compared unescaped, so "a" and "\u0061" are one name).
// b must be valid JSON (json.Valid): readJSON checks the whole body, and
// encoding/json checks a value before handing it to UnmarshalJSON.
func parseObject(b []byte) (object, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errNotObject
	}
	out := make(object, 0, 8)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, nil
	}
	for i < len(b) {
		end := stringEnd(b, i)
		name := b[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return nil, err
			}
			name = []byte(s)
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // the colon
		end = valueEnd(b, i)
		if out.has(name) {
			return nil, &duplicateError{name: string(name)}
		}
		out = append(out, member{name: name, value: b[i:end]})
		i = skipSpace(b, end)
		if i >= len(b) || b[i] == '}' {
			break
		}
		i = skipSpace(b, i+1) // the comma
	}
	return out, nil
}

// has reports whether o has a member named name. Past a few members it
// looks the names up in a map, so that a body of many thousands of
// members costs linear time, not quadratic.
func (o object) has(name []byte) bool {
	if len(o) < 32 {
		for i := range o {
			if bytes.Equal(o[i].name, name) {
				return true
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(o))
	for i := range o {
		seen[string(o[i].name)] = struct{}{}
	}
	_, ok := seen[string(name)]
	return ok
}

// parseArray returns the raw items of the JSON array b, or false when b
// is not an array. b must be valid JSON.
func parseArray(b []byte) ([]json.RawMessage, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	var items []json.RawMessage
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return []json.RawMessage{}, true
	}
	for i < len(b) {
		end := valueEnd(b, i)
		items = append(items, b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) || b[i] == ']' {
			break
		}
		i = skipSpace(b, i+1) // the comma
	}
	return items, true
}

// skipSpace returns the index of the first byte of b from i on that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at
// b[i] (a quote).
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	// A number, true, false or null: up to the next delimiter.
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
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
