package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// requireKey returns a middleware that lets reads through and requires
// "Authorization: Bearer <key>" with one of keys on every mutating request
// (the scheme's case does not matter, RFC 9110 11.1). Every key given is
// required as given: the configuration refuses blank and short keys, so
// what the start-up log counts is what is enforced. Keys are compared as
// SHA-256 digests in constant time, so neither a key's content nor its
// length leaks through timing.
func requireKey(keys []string) echo.MiddlewareFunc {
	digests := make([][sha256.Size]byte, len(keys))
	for i, k := range keys {
		digests[i] = sha256.Sum256([]byte(k))
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(digests) == 0 || !mutating(c.Request().Method) {
				return next(c)
			}
			token, ok := bearerToken(c.Request().Header.Values(echo.HeaderAuthorization))
			got := sha256.Sum256([]byte(token))
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

// bearerToken returns the token of a single "Authorization: Bearer
// <token>" header; ok is false for any other header, or none.
func bearerToken(values []string) (token string, ok bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	token = strings.TrimLeft(rest, " ")
	return token, strings.EqualFold(scheme, "Bearer") && token != "" && !strings.ContainsAny(token, " \t")
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}
