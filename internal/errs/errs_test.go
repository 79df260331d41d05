package errs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// TestRoundTrip: every domain error survives Encode, JSON and Decode as
// the same sentinel or an equal error of the same type, wrapped or not.
func TestRoundTrip(t *testing.T) {
	domain := []error{
		&products.NotFoundError{ID: "the_odyssey"},
		&products.ExistsError{ID: "x"},
		&products.OutOfStockError{ID: "a", Requested: 5, Available: 2},
		products.ErrBadCursor,
		products.ErrUnavailable,
		&orders.NotFoundError{ID: 42},
		&orders.LineNotFoundError{OrderID: 3, LineID: 9, Index: 1},
		orders.ErrConflict,
		orders.ErrReservationVoid,
		orders.ErrUnavailable,
	}
	for _, want := range domain {
		wrapped := fmt.Errorf("get something: %w", want)
		raw, err := json.Marshal(errs.Encode(wrapped))
		if err != nil {
			t.Fatal(err)
		}
		var p errs.Portable
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		got := errs.Decode(p)
		if reflect.TypeOf(got) != reflect.TypeOf(want) || got.Error() != want.Error() || errs.Of(got) != errs.Of(want) {
			t.Errorf("%T %v came back as %T %v (%s)", want, want, got, got, raw)
		}
		if reflect.TypeOf(want).Kind() != reflect.Pointer || reflect.ValueOf(want).Elem().Kind() != reflect.Struct {
			continue
		}
		if !reflect.DeepEqual(got, want) && !errors.Is(got, want) {
			t.Errorf("%#v came back as %#v", want, got)
		}
	}
	for _, sentinel := range []error{products.ErrBadCursor, orders.ErrConflict, orders.ErrReservationVoid, orders.ErrUnavailable} {
		if got := errs.Decode(errs.Encode(sentinel)); got != sentinel {
			t.Errorf("sentinel %v came back as another value %v", sentinel, got)
		}
	}
	var oos *products.OutOfStockError
	if got := errs.Decode(errs.Encode(&products.OutOfStockError{ID: "a", Requested: 5, Available: 2})); !errors.As(got, &oos) ||
		oos.Requested != 5 || oos.Available != 2 || !errors.Is(got, products.ErrOutOfStock) {
		t.Errorf("out of stock came back as %#v", got)
	}
}

// TestUnclassifiedErrorsStayInside: an error with no kind is Internal and
// its text, which may describe the server, is not carried.
func TestUnclassifiedErrorsStayInside(t *testing.T) {
	p := errs.Encode(errors.New("pq: password authentication failed for user secret"))
	if p.Kind != errs.Internal || p.Message != "internal error" || p.Fields != nil {
		t.Fatalf("Encode = %+v", p)
	}
	if errs.Of(nil) != "" || errs.Of(errors.New("x")) != errs.Internal {
		t.Fatal("Of of nil or a plain error")
	}
	if got := errs.Decode(errs.Portable{Kind: "from_a_newer_server", Message: "m"}); errs.Of(got) != "from_a_newer_server" || got.Error() != "m" {
		t.Fatalf("unknown kind decoded as %v", got)
	}
}
