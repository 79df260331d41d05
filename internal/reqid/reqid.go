// Package reqid carries a request's id, the X-Request-Id the gateway
// gives every request, in the context of the work done for it: the
// gateway's, and over module calls, the modules' (internal/rpc sends it
// with every call and restores it in the module's context), so that the
// log lines of every process about one request carry the same id
// (telemetry.LogHandler adds it).
package reqid

import (
	"context"
	"unsafe"

	"github.com/google/uuid"
)

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

// idContext carries a request id: one allocation, where
// context.WithValue would make two (the context and the id boxed); with
// the id as a header value, and a new id's text, in the same one.
type idContext struct {
	context.Context
	id     string
	header [1]string
	text   [36]byte
}

func init() {
	// New ids are random UUIDs drawn from a buffer of crypto/rand output,
	// refilled every 16 ids, rather than one read each.
	uuid.EnableRandPool()
}

// Carry returns ctx carrying the request id id, and id as the value of
// a header ([]string{id}).
func Carry(ctx context.Context, id string) (context.Context, []string) {
	c := &idContext{Context: ctx, id: id}
	c.header[0] = id
	return c, c.header[:]
}

// New returns ctx carrying a new request id, a random UUID, the id, and
// the id as the value of a header: all in one allocation.
func New(ctx context.Context) (context.Context, string, []string) {
	c := &idContext{Context: ctx}
	u := uuid.New()
	const hex = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			c.text[j] = '-'
			j++
		}
		c.text[j], c.text[j+1] = hex[b>>4], hex[b&0x0f]
		j += 2
	}
	// The text is never written again: the string may share it.
	c.id = unsafe.String(&c.text[0], len(c.text))
	c.header[0] = c.id
	return c, c.id, c.header[:]
}

func (c *idContext) Value(k any) any {
	if _, ok := k.(key); ok {
		return c.id
	}
	return c.Context.Value(k)
}

// With returns ctx carrying the request id id.
func With(ctx context.Context, id string) context.Context {
	return &idContext{Context: ctx, id: id}
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	if c, ok := ctx.(*idContext); ok {
		return c.id // the common case, without boxing the id
	}
	id, _ := ctx.Value(key{}).(string)
	return id
}
