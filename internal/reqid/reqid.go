// Package reqid carries a request's id, the X-Request-Id the gateway
// gives every request, in the context of the work done for it: the
// gateway's, and over module calls, the modules' (internal/rpc sends it
// with every call and restores it in the module's context), so that the
// log lines of every process about one request carry the same id
// (telemetry.LogHandler adds it).
package reqid

import "context"

// Header is the header that carries the request id, to the client and
// between the modules.
const Header = "X-Request-Id"

// Valid reports whether id can be a request id: 1 to 64 of
// A-Z a-z 0-9 . _ : -. A client's value is echoed and logged, so it must
// not carry anything else.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

type key struct{}

// With returns ctx carrying the request id id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
