// Package bearer reads and checks bearer tokens (RFC 6750): the API keys
// the gateway asks of writes and the token modules call each other with.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Header is the request header that carries a bearer token.
const Header = "Authorization"

// Value is the header's value that presents token.
func Value(token string) string { return "Bearer " + token }

// Token returns the token of a single "Authorization: Bearer <token>"
// header (the scheme's case does not matter, RFC 9110 11.1); present is
// false when there is no such header, ok false for any other header.
func Token(values []string) (token string, present, ok bool) {
	if len(values) == 0 {
		return "", false, false
	}
	if len(values) != 1 {
		return "", true, false
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	token = strings.TrimLeft(rest, " ")
	return token, true, strings.EqualFold(scheme, "Bearer") && token != "" && !strings.ContainsAny(token, " \t")
}

// Keys are the tokens a check accepts, kept as SHA-256 digests and
// compared in constant time, so that neither a key's content nor its
// length leaks through timing.
type Keys [][sha256.Size]byte

// NewKeys returns the keys that accept each of tokens.
func NewKeys(tokens ...string) Keys {
	k := make(Keys, len(tokens))
	for i, t := range tokens {
		k[i] = sha256.Sum256([]byte(t))
	}
	return k
}

// Match reports whether token is one of the keys; every key is compared.
func (k Keys) Match(token string) bool {
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, d := range k {
		match |= subtle.ConstantTimeCompare(got[:], d[:])
	}
	return match == 1
}
