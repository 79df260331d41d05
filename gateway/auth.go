package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/internal/bearer"
)

// requireKey returns a middleware that lets reads through and requires
// "Authorization: Bearer <key>" with one of keys on every mutating request
// (the scheme's case does not matter, RFC 9110 11.1). Every key given is
// required as given: the configuration refuses blank and short keys, so
// what the start-up log counts is what is enforced. Keys are compared as
// SHA-256 digests in constant time, so neither a key's content nor its
// length leaks through timing.
func requireKey(keys []string) echo.MiddlewareFunc {
	accepted := bearer.NewKeys(keys...)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(accepted) == 0 || !mutating(c.Request().Method) {
				return next(c)
			}
			token, _, ok := bearer.Token(c.Request().Header.Values(bearer.Header))
			if !ok || !accepted.Match(token) {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="airship"`)
				return newError(http.StatusUnauthorized, CodeUnauthorized, "this request needs Authorization: Bearer <API key>")
			}
			return next(c)
		}
	}
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}
