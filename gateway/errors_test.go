package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/orders"
)

// TestIDsExhaustedAnswer: a store out of order ids gives a 500 that says
// so (and is logged as an error), in one process and across a module
// boundary (the error's portable form), not an unexplained one.
func TestIDsExhaustedAnswer(t *testing.T) {
	for name, err := range map[string]error{
		"in process":    fmt.Errorf("place order: %w", orders.ErrIDsExhausted),
		"over the wire": errs.Decode(errs.Encode(fmt.Errorf("create order: %w", orders.ErrIDsExhausted))),
	} {
		status, body, unexpected := toResponse(err)
		if status != http.StatusInternalServerError || body.Error != CodeUnexpected || unexpected ||
			!strings.Contains(body.Message, "handed out its last order or line id") {
			t.Errorf("%s: %d %+v (unexpected %v); want 500 UNEXPECTED_ERROR saying the ids are exhausted", name, status, body, unexpected)
		}
	}
}
