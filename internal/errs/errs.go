// Package errs is airship's error vocabulary: the kinds of failure every
// module's errors report, and their portable form, which crosses a wire or
// a database row and comes back as the same error.
//
// A domain error reports its kind with a Kind method; Of finds it through
// any wrapping. The gateway maps kinds to the API's status codes in one
// table, and a remote adapter sends Encode(err) and rebuilds the error
// with Decode: the very sentinel, or an error of the same type with the
// same fields, so that errors.Is and errors.As work on both sides.
package errs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Kind is the portable class of an error. Its text form is stable: it is
// stored with idempotency outcomes and sent over the wire.
type Kind string

// The kinds of error. Each API error code corresponds to one kind; the
// kinds say nothing about HTTP.
const (
	// Internal is anything else: a bug or a failure nobody classified.
	Internal Kind = "internal"
	// Invalid means a request that can never succeed as it is.
	Invalid Kind = "invalid"
	// ProductNotFound means a product id that does not exist.
	ProductNotFound Kind = "product_not_found"
	// ProductExists means a product id that is taken.
	ProductExists Kind = "product_exists"
	// OutOfStock means a line asks for more than a product has.
	OutOfStock Kind = "out_of_stock"
	// OrderNotFound means an order id that does not exist.
	OrderNotFound Kind = "order_not_found"
	// LineNotFound means an order line the order does not have.
	LineNotFound Kind = "order_line_not_found"
	// KeyReused means an idempotency key sent with another request.
	KeyReused Kind = "idempotency_key_reused"
	// KeyInUse means an idempotency key whose request is still running.
	KeyInUse Kind = "idempotency_key_in_use"
	// Conflict means the data changed meanwhile; retrying may succeed.
	Conflict Kind = "conflict"
	// Unavailable means a backend could not be reached; retry later.
	Unavailable Kind = "unavailable"
	// Exhausted means a store has handed out the last of its ids: no
	// request that needs a new one succeeds until an operator acts.
	Exhausted Kind = "exhausted"
)

// Retryable reports whether a request that failed with k may succeed if
// sent again unchanged (for Exhausted and Internal: once the server is
// mended).
func (k Kind) Retryable() bool {
	return k == Unavailable || k == Conflict || k == Internal || k == Exhausted
}

// Kinded is an error that reports its kind.
type Kinded interface {
	error
	Kind() Kind
}

// Find returns the first error in err's chain that reports a kind.
func Find(err error) (Kinded, bool) {
	var k Kinded
	if errors.As(err, &k) {
		return k, true
	}
	return nil, false
}

// Of returns the kind of err: that of the first error in its chain that
// reports one, Internal if none does, "" for nil.
func Of(err error) Kind {
	if err == nil {
		return ""
	}
	if k, ok := Find(err); ok {
		return k.Kind()
	}
	return Internal
}

// sentinel is a fixed error of a kind.
type sentinel struct {
	kind Kind
	msg  string
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Kind() Kind    { return e.kind }

type sentinelKey struct {
	kind Kind
	msg  string
}

var registry = struct {
	sync.RWMutex
	sentinels map[sentinelKey]error
	types     map[Kind]func(Portable) error
}{sentinels: map[sentinelKey]error{}, types: map[Kind]func(Portable) error{}}

// New returns a sentinel error of kind with the message msg, which Decode
// gives back as the same value. Declare sentinels once, at package level;
// (kind, msg) must be unique.
func New(kind Kind, msg string) error {
	e := &sentinel{kind: kind, msg: msg}
	registry.Lock()
	defer registry.Unlock()
	key := sentinelKey{kind, msg}
	if _, dup := registry.sentinels[key]; dup {
		panic("errs: sentinel declared twice: " + string(kind) + ": " + msg)
	}
	registry.sentinels[key] = e
	return e
}

// Fielder is a kinded error with fields that rebuild it (see Register).
type Fielder interface {
	Fields() map[string]string
}

// Register makes Decode rebuild errors of kind with decode, from their
// message and fields. The package that declares the error type registers
// it, once, in an init function.
func Register(kind Kind, decode func(Portable) error) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.types[kind]; dup {
		panic("errs: kind registered twice: " + string(kind))
	}
	registry.types[kind] = decode
}

// Portable is the wire form of an error.
type Portable struct {
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
	// Fields are what the error's type needs to be rebuilt, as text.
	Fields map[string]string `json:"fields,omitempty"`
}

// Encode returns the portable form of err: the kind, message and fields
// of the first kinded error in its chain (not the text of what wraps it).
// An error with no kind is Internal and its text is not carried: it may
// hold details of the server that must not leave it.
func Encode(err error) Portable {
	k, ok := Find(err)
	if !ok {
		return Portable{Kind: Internal, Message: "internal error"}
	}
	p := Portable{Kind: k.Kind(), Message: k.Error()}
	if f, ok := k.(Fielder); ok {
		p.Fields = f.Fields()
	}
	return p
}

// Decode rebuilds the error p encodes: the sentinel with that kind and
// message, else an error of the type registered for the kind, else an
// error that has p's kind and message.
func Decode(p Portable) error {
	registry.RLock()
	s, isSentinel := registry.sentinels[sentinelKey{p.Kind, p.Message}]
	decode := registry.types[p.Kind]
	registry.RUnlock()
	switch {
	case isSentinel && len(p.Fields) == 0:
		return s
	case decode != nil:
		if err := decode(p); err != nil {
			return err
		}
	}
	return &sentinel{kind: p.Kind, msg: p.Message}
}

// Int64 reads an integer field of a portable error; a missing or broken
// field reads as 0.
func (p Portable) Int64(name string) int64 {
	n, _ := strconv.ParseInt(p.Fields[name], 10, 64)
	return n
}

// MaxProblems bounds the problems an error made by Problems names,
// whatever the request: the rest are counted.
const MaxProblems = 20

// Problems returns an Invalid error whose message names each problem
// ("field: what is wrong"), at most MaxProblems of them and then how many
// more; nil when there is none.
func Problems(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	shown := problems
	if len(shown) > MaxProblems {
		shown = append(shown[:MaxProblems:MaxProblems], fmt.Sprintf("and %d more problems", len(problems)-MaxProblems))
	}
	return &sentinel{kind: Invalid, msg: strings.Join(shown, "; ")}
}
