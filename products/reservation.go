package products

// Reservations: the lines a stock call moves, the reservation an order
// holds until it commits, and the record of its lines that every store
// keeps for the recovery sweep.

import (
	"encoding/json"
	"time"
)

// Line is a quantity of one product, as taken from or given back to stock.
type Line struct {
	ProductID string
	Quantity  int64
	// Incarnation, when set, is the only incarnation of the product the
	// line may take stock from or give it back to; another incarnation
	// counts as a product that does not exist. Empty means whichever
	// incarnation exists (stock recorded before incarnations were kept).
	Incarnation string
}

// Taken maps each product id of a reservation to the incarnation whose
// stock it took.
type Taken map[string]string

// Reservation is stock taken for an order that is not yet committed.
//
// A reservation moves through these states:
//
//	Reserve ──► held ──► Commit  (the order committed: stock stays taken)
//	                └──► Release (the order failed or never committed: stock returns)
//
// Reserve, Commit and Release are idempotent per reservation ID, so a
// recovery sweep may repeat any of them after a crash. Every store keeps a
// record of held reservations with their deadline; Expired lists those past
// it so that the sweep can settle them.
type Reservation struct {
	ID       string
	Lines    []Line
	Deadline time.Time
}

// MergeLines sums the quantities of lines that name the same product (and
// incarnation), keeping the order in which products first appear.
func MergeLines(lines []Line) []Line {
	type key struct{ id, incarnation string }
	out := make([]Line, 0, len(lines))
	index := make(map[key]int, len(lines))
	for _, l := range lines {
		k := key{l.ProductID, l.Incarnation}
		if i, ok := index[k]; ok {
			out[i].Quantity += l.Quantity
			continue
		}
		index[k] = len(out)
		out = append(out, l)
	}
	return out
}

// RestockMemory is how long a store remembers a Restock call, which makes
// a repeated one a no-op; the recovery sweep replays pending restocks well
// within it.
const RestockMemory = 7 * 24 * time.Hour

// recordLine is a line of a reservation's record, in the JSON form every
// store keeps it: [{"p":ID,"q":QUANTITY,"i":INCARNATION}], "i" left out
// when empty.
type recordLine struct {
	ProductID   string `json:"p"`
	Quantity    int64  `json:"q"`
	Incarnation string `json:"i,omitempty"`
}

// EncodeRecord returns the record a store keeps of a reservation's lines,
// from which DecodeRecord reads them back.
func EncodeRecord(lines []Line) ([]byte, error) {
	out := make([]recordLine, len(lines))
	for i, l := range lines {
		out[i] = recordLine(l)
	}
	return json.Marshal(out)
}

// DecodeRecord reads the lines of a reservation's record (EncodeRecord).
func DecodeRecord(raw []byte) ([]Line, error) {
	var rec []recordLine
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	out := make([]Line, len(rec))
	for i, l := range rec {
		out[i] = Line(l)
	}
	return out, nil
}
