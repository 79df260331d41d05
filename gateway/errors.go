package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
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

// toResponse maps any error a handler returns to its status and body. It is
// the one place where errors become HTTP: handlers never write error bodies.
func toResponse(err error) (int, ErrorBody, bool) {
	var (
		api        *apiError
		httpErr    *echo.HTTPError
		noProduct  *products.NotFoundError
		taken      *products.ExistsError
		short      *products.OutOfStockError
		noOrder    *orders.NotFoundError
		noLine     *orders.LineNotFoundError
		unexpected = false
	)
	switch {
	case errors.As(err, &api):
		return api.status, api.body, unexpected
	case errors.As(err, &noProduct):
		return http.StatusNotFound, ErrorBody{CodeProductNotFound, fmt.Sprintf("Product ID %s does not exist", clip(noProduct.ID))}, unexpected
	case errors.As(err, &taken):
		return http.StatusConflict, ErrorBody{CodeProductExists, fmt.Sprintf("Product ID %s already exists", taken.ID)}, unexpected
	case errors.As(err, &short):
		return http.StatusConflict, ErrorBody{CodeOutOfStock, fmt.Sprintf("Product ID %s is out of stock: %d requested, %d available",
			short.ID, short.Requested, short.Available)}, unexpected
	case errors.As(err, &noOrder):
		return http.StatusNotFound, ErrorBody{CodeOrderNotFound, fmt.Sprintf("Order ID %d does not exist", noOrder.ID)}, unexpected
	case errors.As(err, &noLine):
		return http.StatusBadRequest, ErrorBody{CodeValidation, fmt.Sprintf("order_details[%d].id: order %d has no line %d",
			noLine.Index, noLine.OrderID, noLine.LineID)}, unexpected
	case errors.Is(err, products.ErrBadCursor):
		return http.StatusBadRequest, ErrorBody{CodeValidation, "cursor: not a cursor returned by this API"}, unexpected
	case errors.Is(err, products.ErrUnavailable), errors.Is(err, orders.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, orders.ErrReservationVoid),
		errors.Is(err, orders.ErrConflict):
		return http.StatusServiceUnavailable, ErrorBody{CodeServiceUnavailable, "a backend is unavailable or busy; retry later"}, unexpected
	case errors.As(err, &httpErr):
		switch httpErr.Code {
		case http.StatusNotFound:
			return http.StatusNotFound, ErrorBody{CodeNotFound, "no such route"}, unexpected
		case http.StatusMethodNotAllowed:
			return http.StatusMethodNotAllowed, ErrorBody{CodeMethodNotAllowed, "method not allowed on this route"}, unexpected
		case http.StatusRequestEntityTooLarge:
			return http.StatusRequestEntityTooLarge, ErrorBody{CodePayloadTooLarge, "request body too large"}, unexpected
		case http.StatusServiceUnavailable:
			return http.StatusServiceUnavailable, ErrorBody{CodeServiceUnavailable, "service unavailable; retry later"}, unexpected
		}
		if httpErr.Code >= 400 && httpErr.Code < 500 {
			return http.StatusBadRequest, ErrorBody{CodeBadRequest, http.StatusText(httpErr.Code)}, unexpected
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
		body = ErrorBody{CodeServiceUnavailable, "a backend is unavailable or busy; retry later"}
	case errors.Is(ctxErr, context.Canceled):
		g.log.Debug("client went away", "request_id", reqID, "err", err)
		status, unexpected = http.StatusServiceUnavailable, false
		body = ErrorBody{CodeServiceUnavailable, "request cancelled"}
	}
	switch {
	case unexpected:
		body.Message = fmt.Sprintf("unexpected error (request id %s)", reqID)
		g.log.Error("unexpected error", "request_id", reqID, "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
	case backendDown(err):
		g.outages.refuse(c.Request().Context(), reqID, err)
	case status == http.StatusServiceUnavailable:
		g.log.Info("request refused: retry later", "request_id", reqID, "err", err)
	}
	// For HEAD, net/http sends the headers and drops the body.
	if err := c.JSON(status, body); err != nil {
		g.log.Debug("write error response", "request_id", reqID, "err", err)
	}
}

// backendDown reports whether err means a backend could not be reached.
func backendDown(err error) bool {
	return errors.Is(err, products.ErrUnavailable) || errors.Is(err, orders.ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded)
}
