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
