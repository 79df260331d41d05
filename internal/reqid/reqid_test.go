package reqid

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// The request id is found in the context it was put in and in every
// context made from it, and a context without one has "".
func TestWithFrom(t *testing.T) {
	type other struct{}
	ctx := context.WithValue(t.Context(), other{}, "v")
	if got := From(ctx); got != "" {
		t.Errorf("From of a context without an id: %q", got)
	}
	ctx = With(ctx, "req-1")
	child, cancel := context.WithCancel(context.WithValue(ctx, other{}, "w"))
	defer cancel()
	for name, c := range map[string]context.Context{"own": ctx, "child": child} {
		if got := From(c); got != "req-1" {
			t.Errorf("%s context: From %q, want req-1", name, got)
		}
	}
	if ctx.Value(other{}) != "v" || child.Value(other{}) != "w" {
		t.Error("the request id hides the context's other values")
	}
	if got := From(With(ctx, "req-2")); got != "req-2" {
		t.Errorf("a new id over an old one: %q", got)
	}
}

// New makes a new UUID each time, carried by the context and given as a
// header value; Carry carries the id it is given.
func TestNewAndCarry(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		ctx, id, header := New(t.Context())
		u, err := uuid.Parse(id)
		if err != nil || u.String() != id || u.Version() != 4 {
			t.Fatalf("new id %q is not a random UUID as uuid writes them: %v", id, err)
		}
		if seen[id] || From(ctx) != id || len(header) != 1 || header[0] != id || !Valid(id) {
			t.Fatalf("new id %q: seen %v, From %q, header %q", id, seen[id], From(ctx), header)
		}
		seen[id] = true
	}
	ctx, header := Carry(t.Context(), "client-1")
	if From(ctx) != "client-1" || len(header) != 1 || header[0] != "client-1" {
		t.Errorf("Carry: From %q, header %q", From(ctx), header)
	}
}
