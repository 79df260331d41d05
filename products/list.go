package products

import (
	"encoding/base64"
	"fmt"
	"strconv"
)

// A listing cursor is the base64url encoding of the last id of the page
// before, in its canonical form: every store lists in id order, and reads
// and writes cursors with these functions, so that a cursor means the same
// whichever store (or process) answers the next page.

// NextCursor returns the cursor of the page after the one ending with id.
func NextCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// ListStart checks the arguments of List and returns the id its page
// starts after: "" for the first page (an empty cursor). It fails with
// ErrBadCursor for a cursor NextCursor did not write, and refuses a limit
// below one.
func ListStart(cursor string, limit int) (after string, err error) {
	if cursor != "" {
		b, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
		if err != nil || !ValidID(string(b)) || NextCursor(string(b)) != cursor {
			return "", ErrBadCursor
		}
		after = string(b)
	}
	if limit < 1 {
		return "", fmt.Errorf("list products: limit %s is not positive", strconv.Itoa(limit))
	}
	return after, nil
}

// PageOf returns the page of the first limit products among found, which
// a store read with one more than the limit so that it knows whether a
// next page exists.
func PageOf(found []Product, limit int) Page {
	page := Page{Products: found}
	if len(found) > limit {
		page.Products = found[:limit]
		page.Next = NextCursor(found[limit-1].ID)
	}
	if page.Products == nil {
		page.Products = []Product{}
	}
	return page
}
