package gateway_test

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/apitest"
)

var (
	// apiDocRequest is a request named in docs/api.md: `GET /orders/{id}`.
	apiDocRequest = regexp.MustCompile("`(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^`?\\s]*)")
	// errorRow is a row of an error table: | 404 | `ORDER_NOT_FOUND` | … |
	errorRow = regexp.MustCompile("(?m)^\\s*\\| (\\d{3}) \\| `([A-Z_]+)` \\|")
)

// TestAPIDocMatchesOpenAPI keeps docs/api.md, the API's description for
// people, in step with gateway/apidocs/openapi.yaml: every operation of
// the one is named in the other and nothing else is, and the error table
// lists exactly the error codes the OpenAPI document can answer, each with
// its status.
func TestAPIDocMatchesOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	spec, err := apitest.LoadOpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	inSpec := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			inSpec[method+" "+path] = true
		}
	}
	inDoc := map[string]bool{}
	for _, m := range apiDocRequest.FindAllStringSubmatch(doc, -1) {
		inDoc[m[1]+" "+m[2]] = true
	}
	for _, op := range slices.Sorted(maps.Keys(inSpec)) {
		if !inDoc[op] {
			t.Errorf("%s is in openapi.yaml but not in docs/api.md", op)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(inDoc)) {
		if !inSpec[op] {
			t.Errorf("docs/api.md names %s, which openapi.yaml does not describe", op)
		}
	}

	// The error codes: the OpenAPI document's error table and the codes its
	// error schemas enumerate, against docs/api.md's error table.
	specCodes := map[string]string{} // code → status
	for _, m := range errorRow.FindAllStringSubmatch(spec.Info.Description, -1) {
		specCodes[m[2]] = m[1]
	}
	for name, s := range spec.Components.Schemas {
		if e := s.Value.Properties["error"]; e != nil && e.Value != nil {
			for _, code := range e.Value.Enum {
				if _, ok := specCodes[code.(string)]; !ok {
					t.Errorf("schema %s answers %s, which openapi.yaml's error table does not list", name, code)
				}
			}
		}
	}
	_, errorsSection, _ := strings.Cut(doc, "\n## Errors\n")
	errorsSection, _, _ = strings.Cut(errorsSection, "\n## ")
	docCodes := map[string]string{}
	for _, m := range errorRow.FindAllStringSubmatch(errorsSection, -1) {
		docCodes[m[2]] = m[1]
	}
	if len(specCodes) < 15 {
		t.Fatalf("openapi.yaml's error table has %d codes; want every code the API answers", len(specCodes))
	}
	for code, status := range specCodes {
		if got, ok := docCodes[code]; !ok {
			t.Errorf("error %s (%s) is not in docs/api.md's error table", code, status)
		} else if got != status {
			t.Errorf("docs/api.md: error %s has status %s; openapi.yaml says %s", code, got, status)
		}
	}
	for code := range docCodes {
		if _, ok := specCodes[code]; !ok {
			t.Errorf("docs/api.md lists error %s, which openapi.yaml does not", code)
		}
	}
}
