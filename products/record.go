package products

import "encoding/json"

// reservationLine is a line of a reservation's record, as both stores keep
// it (JSON) for the recovery sweep.
type reservationLine struct {
	ProductID   string `json:"p"`
	Quantity    int64  `json:"q"`
	Incarnation string `json:"i,omitempty"`
}

func recordOf(lines []Line) []reservationLine {
	out := make([]reservationLine, len(lines))
	for i, l := range lines {
		out[i] = reservationLine(l)
	}
	return out
}

func decodeRecord(raw []byte) ([]Line, error) {
	var rec []reservationLine
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	out := make([]Line, len(rec))
	for i, l := range rec {
		out[i] = Line(l)
	}
	return out, nil
}
