package events_test

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/events"
)

// schemaBlock is a JSON Schema in docs/events.md: a ```json schema NAME block.
var schemaBlock = regexp.MustCompile("(?s)```json schema ([a-z_]+)\n(.*?)```")

// TestEventSchemas: the bodies airship builds, and the example of
// docs/events.md, are valid against the schemas docs/events.md gives for
// each event; a body in another shape is not.
func TestEventSchemas(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*jsonschema.Schema{}
	for _, m := range schemaBlock.FindAllSubmatch(doc, -1) {
		name := string(m[1])
		raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(m[2]))
		if err != nil {
			t.Fatalf("schema of %s: %v", name, err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(name+".json", raw); err != nil {
			t.Fatal(err)
		}
		if schemas[name], err = c.Compile(name + ".json"); err != nil {
			t.Fatalf("schema of %s: %v", name, err)
		}
	}
	valid := func(name string, body []byte) error {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return err
		}
		return schemas[name].Validate(inst)
	}
	o := events.Order{ID: 3, Lines: []events.OrderLine{
		{ID: 5, ProductID: "the_odyssey", Price: decimal.RequireFromString("100000.99"), Quantity: 1},
		{ID: 6, ProductID: "the_odyssey-0.8623041", Price: decimal.RequireFromString("9999999999999999.99"), Quantity: 100},
		{ID: 7, ProductID: "b", Price: decimal.Zero, Quantity: 2},
	}}
	body, err := events.Body(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{events.OrderCreated, events.OrderUpdated, events.OrderDeleted} {
		if schemas[name] == nil {
			t.Fatalf("docs/events.md has no schema for %s", name)
		}
		if err := valid(name, body); err != nil {
			t.Errorf("%s: airship's body %s is invalid: %v", name, body, err)
		}
		for _, bad := range []string{
			strings.Replace(string(body), `"100000.99"`, `100000.99`, 1),
			strings.Replace(string(body), `"quantity":1`, `"quantity":"1"`, 1),
			`{"order":{"id":3,"order_details":[]}}`,
			`{"id":3,"order_details":[{"id":5,"product_id":"a","price":"1.00","quantity":1}]}`,
		} {
			if valid(name, []byte(bad)) == nil {
				t.Errorf("%s: schema accepts %s", name, bad)
			}
		}
	}
	example := regexp.MustCompile("(?s)```json\n(\\{\"order\".*?)\n```").FindSubmatch(doc)
	if example == nil {
		t.Fatal("docs/events.md has no example body")
	}
	if err := valid(events.OrderCreated, example[1]); err != nil {
		t.Errorf("the example %s is invalid: %v", example[1], err)
	}
}
