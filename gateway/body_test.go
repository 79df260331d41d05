package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// referenceObject reads a JSON object with encoding/json's decoder: its
// members in order, the names unescaped, and the first name given twice.
func referenceObject(t *testing.T, b []byte) (names []string, values []json.RawMessage, dup *string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("reference: %s is not an object", b)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference: %s: %v", b, err)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("reference: %s: %v", b, err)
		}
		if seen[name] && dup == nil {
			dup = &name
		}
		seen[name] = true
		names, values = append(names, name), append(values, v)
	}
	return names, values, dup
}

// randomValue returns a random JSON value, nested up to depth, with the
// characters that a scanner may trip on: quotes, backslashes, braces and
// brackets inside strings, escapes, white space.
func randomValue(r *rand.Rand, depth int) string {
	ws := func() string { return []string{"", " ", "\n\t", "\r "}[r.IntN(4)] }
	switch k := r.IntN(8); {
	case k == 0 && depth > 0:
		var parts []string
		for i := range r.IntN(4) {
			parts = append(parts, ws()+randomString(r, i)+ws()+":"+ws()+randomValue(r, depth-1)+ws())
		}
		return "{" + strings.Join(parts, ",") + ws() + "}"
	case k == 1 && depth > 0:
		var parts []string
		for range r.IntN(4) {
			parts = append(parts, ws()+randomValue(r, depth-1)+ws())
		}
		return "[" + strings.Join(parts, ",") + ws() + "]"
	case k == 2:
		return []string{"true", "false", "null"}[r.IntN(3)]
	case k == 3:
		return []string{"0", "-1", "12.5e-3", "1E+2", "99999999999999999999"}[r.IntN(5)]
	}
	return randomString(r, r.IntN(3))
}

func randomString(r *rand.Rand, i int) string {
	pieces := []string{"a", "id", `\"`, `\\`, "{", "}", "[", "]", ",", ":", `\u0061`, `\n`, "é", `\ud83d\ude00`, " ", `\/`}
	var b strings.Builder
	b.WriteByte('"')
	for range r.IntN(5) + i%2 {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	b.WriteByte('"')
	return b.String()
}

// parseObject reads every valid JSON object as encoding/json's decoder
// does: the same members, names and raw values, and the same duplicate.
func TestParseObjectAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a\"b":"}","c":["]",{"d":"\\"}]}`,
		`{"x" : { "y" : [ 1 , 2 ] } , "z" : null }`, "{\n\t\"order_details\":\t[ {\"product_id\":\"p\"} ]\r\n}",
		`{"a":"\\","b":"\\\""}`, `{"":0,"":1}`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for len(docs) < 5000 {
		v := randomValue(r, 3)
		if strings.HasPrefix(v, "{") {
			docs = append(docs, v)
		}
	}
	for _, doc := range docs {
		b := []byte(doc)
		if !json.Valid(b) {
			t.Fatalf("test document %s is not valid JSON", doc)
		}
		names, values, dup := referenceObject(t, b)
		got, err := parseObject(b)
		if dup != nil {
			if d, ok := err.(*duplicateError); !ok || d.name != *dup {
				t.Fatalf("%s: %v, want the duplicate %q", doc, err, *dup)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if len(got) != len(names) {
			t.Fatalf("%s: %d members, want %d", doc, len(got), len(names))
		}
		for i := range got {
			if string(got[i].name) != names[i] || !bytes.Equal(got[i].value, values[i]) {
				t.Fatalf("%s: member %d is %q: %s, want %q: %s", doc, i, got[i].name, got[i].value, names[i], values[i])
			}
		}
	}
}

// parseArray reads every valid JSON array's items as encoding/json does
// (null, which encoding/json reads as no array, is refused before).
func TestParseArrayAgreesWithEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		doc := randomValue(r, 3)
		var want []json.RawMessage
		isArray := json.Unmarshal([]byte(doc), &want) == nil && doc != "null"
		got, ok := parseArray([]byte(doc))
		if ok != isArray {
			t.Fatalf("%s: array %v, want %v", doc, ok, isArray)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("%s: items %q, want %q", doc, got, want)
		}
	}
}
