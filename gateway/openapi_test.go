package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/gateway/apidocs"
	"github.com/airshipltd/airship/internal/apitest"
)

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := apitest.LoadOpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
}

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIMatchesRoutes checks that the document describes exactly the
// routes the gateway serves: no undocumented route, no documented route
// that does not exist.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, err := apitest.LoadOpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}

	e := gateway.New(nil, nil, nil, gateway.Config{}, slog.New(slog.DiscardHandler))
	var served []string
	for _, r := range e.Routes() {
		route := r.Method + " " + r.Path
		if slices.Contains(apidocs.Routes, route) || r.Method == http.MethodHead { // HEAD: wherever GET is, described once
			continue
		}
		served = append(served, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(documented)
	sort.Strings(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is served but not in gateway/apidocs/openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("route %s is in gateway/apidocs/openapi.yaml but not served", r)
		}
	}
	for _, r := range apidocs.Routes {
		method, path, _ := strings.Cut(r, " ")
		if !slices.ContainsFunc(e.Routes(), func(x *echo.Route) bool { return x.Method == method && x.Path == path }) {
			t.Errorf("documentation route %s is not served", r)
		}
	}
}

// TestDocsServed fetches the documents and pages and checks that none of
// them points the browser outside the server.
func TestDocsServed(t *testing.T) {
	srv := httptest.NewServer(gateway.New(nil, nil, nil, gateway.Config{}, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|cdn\.|fonts\.googleapis|fonts\.gstatic`)
	for _, tc := range []struct {
		path, contentType string
		checkExternal     bool
	}{
		{"/openapi.yaml", "application/yaml", false},
		{"/openapi.json", "application/json", false},
		{"/docs", "text/html", true},
		{"/docs/", "text/html", true},
		{"/docs/swagger-ui.css", "text/css", true},
		{"/docs/swagger-ui-bundle.js", "javascript", false},
		{"/redoc", "text/html", true},
		{"/redoc/redoc.standalone.js", "javascript", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.contentType)
			}
			if len(body) == 0 {
				t.Fatal("empty body")
			}
			if tc.checkExternal {
				if m := external.Find(body); m != nil {
					t.Errorf("page refers to something outside the server: %q", m)
				}
			}
			if strings.Contains(string(body), "cdn.redoc.ly") {
				t.Error("page loads the ReDoc logo from cdn.redoc.ly")
			}
		})
	}

	// /openapi.json is the YAML document, value for value.
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	jsonDoc, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := openapi3.NewLoader().LoadFromData(jsonDoc)
	if err != nil {
		t.Fatalf("/openapi.json does not load: %v", err)
	}
	fromYAML, err := apitest.LoadOpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromJSON)
	b, _ := json.Marshal(fromYAML)
	if string(a) != string(b) {
		t.Error("/openapi.json differs from openapi.yaml")
	}
	if !strings.HasPrefix(string(jsonDoc), `{"openapi":"3.0.3","info":`) {
		t.Errorf("/openapi.json does not keep the order of openapi.yaml: %.60s", jsonDoc)
	}
}
