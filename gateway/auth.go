package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/internal/bearer"
)

// authorize lets reads through and requires "Authorization: Bearer <key>"
// with one of the API keys on every mutating request (the scheme's case
// does not matter, RFC 9110 11.1). Every key given is required as given:
// the configuration refuses blank and short keys, so what the start-up
// log counts is what is enforced. Keys are compared as SHA-256 digests in
// constant time, so neither a key's content nor its length leaks through
// timing.
func (g *Gateway) authorize(c echo.Context) error {
	if len(g.keys) == 0 || !mutating(c.Request().Method) {
		return nil
	}
	token, _, ok := bearer.Token(c.Request().Header.Values(bearer.Header))
	if !ok || !g.keys.Match(token) {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="airship"`)
		return newError(http.StatusUnauthorized, CodeUnauthorized, "this request needs Authorization: Bearer <API key>")
	}
	return nil
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}
