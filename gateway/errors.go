package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/internal/errs"
)

// Error codes of the API contract.
const (
	CodeBadRequest         = "BAD_REQUEST"
	CodeValidation         = "VALIDATION_ERROR"
	CodeProductNotFound    = "PRODUCT_NOT_FOUND"
	CodeOrderNotFound      = "ORDER_NOT_FOUND"
	CodeNotFound           = "NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeProductExists      = "PRODUCT_EXISTS"
	CodeOutOfStock         = "OUT_OF_STOCK"
	CodePayloadTooLarge    = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
	CodeUnexpected         = "UNEXPECTED_ERROR"
	// Extended: Idempotency-Key and access control.
	CodeIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	CodeIdempotencyKeyInUse  = "IDEMPOTENCY_KEY_IN_USE"
	CodeUnauthorized         = "UNAUTHORIZED"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// apiError is an error that already knows its response.
type apiError struct {
	status int
	body   ErrorBody
}

func (e *apiError) Error() string { return e.body.Error + ": " + e.body.Message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: ErrorBody{Error: code, Message: fmt.Sprintf(format, args...)}}
}

func badRequest(msg string) error { return newError(http.StatusBadRequest, CodeBadRequest, "%s", msg) }
func validationError(msg string) error {
	return newError(http.StatusBadRequest, CodeValidation, "%s", msg)
}
func unsupportedMediaType(format string, args ...any) error {
	return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, format, args...)
}
func errPayloadTooLarge(limit int64) error {
	return newError(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body is larger than %d bytes", limit)
}

// clip shortens a client-supplied value echoed in a message.
func clip(s string) string {
	const most = 128
	if len(s) <= most {
		return s
	}
	return strings.ToValidUTF8(s[:most], "") + "…"
}

// byKind maps each kind of domain error to its status and the contract's
// code. It is the one table that turns errors into HTTP.
var byKind = map[errs.Kind]struct {
	status int
	code   string
}{
	errs.Invalid:         {http.StatusBadRequest, CodeValidation},
	errs.LineNotFound:    {http.StatusBadRequest, CodeValidation},
	errs.ProductNotFound: {http.StatusNotFound, CodeProductNotFound},
	errs.OrderNotFound:   {http.StatusNotFound, CodeOrderNotFound},
	errs.ProductExists:   {http.StatusConflict, CodeProductExists},
	errs.OutOfStock:      {http.StatusConflict, CodeOutOfStock},
	errs.KeyInUse:        {http.StatusConflict, CodeIdempotencyKeyInUse},
	errs.KeyReused:       {http.StatusUnprocessableEntity, CodeIdempotencyKeyReused},
	errs.Conflict:        {http.StatusServiceUnavailable, CodeServiceUnavailable},
	errs.Unavailable:     {http.StatusServiceUnavailable, CodeServiceUnavailable},
	errs.Exhausted:       {http.StatusInternalServerError, CodeUnexpected},
}

// byStatus maps the router's own errors (echo.HTTPError) to the contract.
var byStatus = map[int]ErrorBody{
	http.StatusNotFound:              {CodeNotFound, "no such route"},
	http.StatusMethodNotAllowed:      {CodeMethodNotAllowed, "method not allowed on this route"},
	http.StatusRequestEntityTooLarge: {CodePayloadTooLarge, "request body too large"},
	http.StatusServiceUnavailable:    {CodeServiceUnavailable, "service unavailable; retry later"},
}

// unavailableMessage is the message of every 503: what failed behind the
// server is logged, never sent.
const unavailableMessage = "a backend is unavailable or busy; retry later"

// toResponse maps any error a handler returns to its status and body;
// unexpected is true for errors the contract has no code for. Domain
// errors are mapped by kind (byKind), with the domain error's own message,
// which names what the request got wrong.
func toResponse(err error) (status int, body ErrorBody, unexpected bool) {
	var (
		api     *apiError
		httpErr *echo.HTTPError
	)
	if errors.As(err, &api) {
		return api.status, api.body, false
	}
	if k, ok := errs.Find(err); ok {
		if m, ok := byKind[k.Kind()]; ok {
			msg := k.Error()
			if m.status == http.StatusServiceUnavailable {
				msg = unavailableMessage
			}
			return m.status, ErrorBody{m.code, msg}, false
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, ErrorBody{CodeServiceUnavailable, unavailableMessage}, false
	}
	if errors.As(err, &httpErr) {
		if b, ok := byStatus[httpErr.Code]; ok {
			return httpErr.Code, b, false
		}
		if httpErr.Code >= 400 && httpErr.Code < 500 {
			return http.StatusBadRequest, ErrorBody{CodeBadRequest, http.StatusText(httpErr.Code)}, false
		}
	}
	return http.StatusInternalServerError, ErrorBody{CodeUnexpected, "unexpected error"}, true
}

// errorHandler is echo's HTTPErrorHandler.
func (g *Gateway) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body, unexpected := toResponse(err)
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	// A backend call cut short by the request's own deadline, or by the
	// client going away, is not an unexpected error whatever the driver
	// made of it.
	switch ctxErr := c.Request().Context().Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded) && unexpected:
		status, unexpected = http.StatusServiceUnavailable, false
		body = ErrorBody{CodeServiceUnavailable, unavailableMessage}
	case errors.Is(ctxErr, context.Canceled):
		g.log.DebugContext(c.Request().Context(), "client went away", "request_id", reqID, "err", err)
		status, unexpected = http.StatusServiceUnavailable, false
		body = ErrorBody{CodeServiceUnavailable, "request cancelled"}
	}
	switch {
	case unexpected:
		body.Message = fmt.Sprintf("unexpected error (request id %s)", reqID)
		g.log.ErrorContext(c.Request().Context(), "unexpected error", "request_id", reqID, "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
	case backendDown(err):
		g.outages.refuse(c.Request().Context(), reqID, err)
	case status == http.StatusServiceUnavailable:
		g.log.InfoContext(c.Request().Context(), "request refused: retry later", "request_id", reqID, "err", err)
	case status >= http.StatusInternalServerError: // a known failure only an operator can mend
		g.log.ErrorContext(c.Request().Context(), "request failed", "request_id", reqID, "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
	}
	// For HEAD, net/http sends the headers and drops the body.
	if err := c.JSON(status, body); err != nil {
		g.log.DebugContext(c.Request().Context(), "write error response", "request_id", reqID, "err", err)
	}
}

// backendDown reports whether err means a backend could not be reached.
func backendDown(err error) bool {
	return errs.Of(err) == errs.Unavailable || errors.Is(err, context.DeadlineExceeded)
}
