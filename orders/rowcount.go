package orders

import (
	"database/sql"
	"fmt"
)

// RowCountError means a write changed another number of rows than it
// must: something in the database (a rule, a trigger, a policy) changed
// what the statement does. The store rolls the whole change back and
// reports this error (an internal error to the client), never a success:
// an order whose DELETE deleted nothing must not be reported deleted, nor
// its stock given back.
type RowCountError struct {
	What      string // the write: "delete order 5", "update order 5 line 7"…
	Got, Want int64
}

func (e *RowCountError) Error() string {
	return fmt.Sprintf("%s: %d rows changed, %d expected (a rule or trigger in the database?); the change was rolled back",
		e.What, e.Got, e.Want)
}

// expectRows checks that a write changed want rows.
func expectRows(res sql.Result, want int64, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n != want {
		return &RowCountError{What: what, Got: n, Want: want}
	}
	return nil
}
