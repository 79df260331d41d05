package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Code is an error code of the API contract, the "error" of an error
// answer's body. Each code is also its own sentinel error:
//
//	if errors.Is(err, client.ErrProductNotFound) { … }
//
// matches an *Error with that code.
type Code string

// Error makes each code a sentinel for errors.Is; it is the code itself.
func (c Code) Error() string { return string(c) }

// The contract's error codes, with the statuses the server answers them
// with.
const (
	// ErrBadRequest (400): the body is not JSON, a query value does not
	// parse, or a header is malformed.
	ErrBadRequest Code = "BAD_REQUEST"
	// ErrValidation (400): a field is missing, unknown, of the wrong type
	// or out of range; the message names it.
	ErrValidation Code = "VALIDATION_ERROR"
	// ErrUnauthorized (401): the server requires an API key for changes
	// (WithAPIKey) and got none or a wrong one.
	ErrUnauthorized Code = "UNAUTHORIZED"
	// ErrProductNotFound (404): no product has this id (also a line of an
	// order).
	ErrProductNotFound Code = "PRODUCT_NOT_FOUND"
	// ErrOrderNotFound (404): no order has this id.
	ErrOrderNotFound Code = "ORDER_NOT_FOUND"
	// ErrNotFound (404): no such route.
	ErrNotFound Code = "NOT_FOUND"
	// ErrMethodNotAllowed (405): the route exists, the method does not.
	ErrMethodNotAllowed Code = "METHOD_NOT_ALLOWED"
	// ErrProductExists (409): a product already has this id.
	ErrProductExists Code = "PRODUCT_EXISTS"
	// ErrOutOfStock (409): an order asks for more than a product has in
	// stock; nothing changed.
	ErrOutOfStock Code = "OUT_OF_STOCK"
	// ErrIdempotencyKeyInUse (409): a request with the same
	// Idempotency-Key is still running; retry later.
	ErrIdempotencyKeyInUse Code = "IDEMPOTENCY_KEY_IN_USE"
	// ErrPayloadTooLarge (413): the body is over the server's limit.
	ErrPayloadTooLarge Code = "PAYLOAD_TOO_LARGE"
	// ErrUnsupportedMediaType (415): the body's Content-Type is not JSON
	// in UTF-8.
	ErrUnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE"
	// ErrIdempotencyKeyReused (422): the Idempotency-Key was used before
	// with another body.
	ErrIdempotencyKeyReused Code = "IDEMPOTENCY_KEY_REUSED"
	// ErrServiceUnavailable (503): a backend is unreachable or busy;
	// retryable.
	ErrServiceUnavailable Code = "SERVICE_UNAVAILABLE"
	// ErrUnexpected (500): anything else; the message carries the request
	// id the server logged it with.
	ErrUnexpected Code = "UNEXPECTED_ERROR"
)

// Codes lists every code of the contract.
var Codes = []Code{
	ErrBadRequest, ErrValidation, ErrUnauthorized, ErrProductNotFound, ErrOrderNotFound, ErrNotFound,
	ErrMethodNotAllowed, ErrProductExists, ErrOutOfStock, ErrIdempotencyKeyInUse, ErrPayloadTooLarge,
	ErrUnsupportedMediaType, ErrIdempotencyKeyReused, ErrServiceUnavailable, ErrUnexpected,
}

// Error is an answer other than the one a call expects: usually an error
// answer of the contract ({"error": CODE, "message": …}).
type Error struct {
	// Status is the HTTP status, such as 404.
	Status int
	// Code is the contract's code from the body, such as
	// ErrProductNotFound; empty when the body was not an error document of
	// the contract (a proxy's page, a 431 of the HTTP server).
	Code Code
	// Message is the body's message, or the start of a body that was not
	// the contract's.
	Message string
	// RequestID is the answer's X-Request-Id, which the server's logs
	// carry too.
	RequestID string
	// RetryAfter is the answer's Retry-After header, if any.
	RetryAfter string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "airship: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + string(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// Is reports whether target is e's code, so that errors.Is(err,
// client.ErrOutOfStock) matches.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && e.Code != "" && c == e.Code
}

// CheckResponse returns nil if resp has a 2xx status and an *Error
// otherwise, reading (not closing) up to 64 KiB of its body. It turns the
// answers of requests sent without the Client into the Client's errors.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return responseError(resp, body)
}

// responseError makes the *Error of an answer with this body.
func responseError(resp *http.Response, body []byte) *Error {
	e := &Error{
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: resp.Header.Get("Retry-After"),
	}
	var doc struct {
		Error   *string `json:"error"`
		Message *string `json:"message"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Error != nil && *doc.Error != "" {
		e.Code = Code(*doc.Error)
		if doc.Message != nil {
			e.Message = *doc.Message
		}
		return e
	}
	const most = 200
	msg := strings.TrimSpace(strings.ToValidUTF8(string(body[:min(len(body), most)]), ""))
	if len(body) > most {
		msg += "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}
