package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// requireKey returns a middleware that lets reads through and requires
// "Authorization: Bearer <key>" with one of keys on every mutating request.
// Keys are compared as SHA-256 digests in constant time, so neither a key's
// content nor its length leaks through timing.
func requireKey(keys []string) echo.MiddlewareFunc {
	var digests [][sha256.Size]byte
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			digests = append(digests, sha256.Sum256([]byte(k)))
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(digests) == 0 || !mutating(c.Request().Method) {
				return next(c)
			}
			token, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			got := sha256.Sum256([]byte(strings.TrimSpace(token)))
			match := 0
			for _, d := range digests {
				match |= subtle.ConstantTimeCompare(got[:], d[:])
			}
			if !ok || match != 1 {
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
