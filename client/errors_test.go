package client_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/airshipltd/airship/client"
)

// TestErrorsMatchTheirCode: an error answer becomes an *Error that
// errors.Is matches with its code's sentinel, and with no other.
func TestErrorsMatchTheirCode(t *testing.T) {
	for _, code := range client.Codes {
		_, url := serve(t, answer(418, `{"error": "`+string(code)+`", "message": "m"}`, "X-Request-Id", "rid"))
		c := newClient(t, url, client.NoRetry)
		_, err := c.GetProduct(t.Context(), "x")
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %T %v, want *client.Error", code, err, err)
		}
		if e.Status != 418 || e.Code != code || e.Message != "m" || e.RequestID != "rid" {
			t.Errorf("%s: %+v", code, e)
		}
		for _, other := range client.Codes {
			if errors.Is(err, other) != (other == code) {
				t.Errorf("%s: errors.Is(err, %s) = %v", code, other, !(other == code))
			}
		}
		if want := "airship: 418 " + string(code) + ": m (request id rid)"; err.Error() != want {
			t.Errorf("%s: Error() = %q, want %q", code, err.Error(), want)
		}
	}
}

// TestErrorOfAnotherBody: an answer that is not the contract's error
// document (a proxy's page, the HTTP server's 431) is an *Error with no
// code and the start of the body.
func TestErrorOfAnotherBody(t *testing.T) {
	long := strings.Repeat("x", 300)
	for body, want := range map[string]string{
		"<html>Bad Gateway</html>": "<html>Bad Gateway</html>",
		"":                         "Bad Gateway",
		long:                       long[:200] + "…",
		`{"message": "no code"}`:   `{"message": "no code"}`,
	} {
		_, url := serve(t, answer(502, body))
		_, err := newClient(t, url, client.NoRetry).GetProduct(t.Context(), "x")
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 502 || e.Code != "" || e.Message != want {
			t.Errorf("body %.20q: %#v, want status 502, no code, message %.20q", body, err, want)
		}
		for _, code := range client.Codes {
			if errors.Is(err, code) {
				t.Errorf("body %.20q matches %s", body, code)
			}
		}
	}
	// An unexpected success status is an *Error too.
	_, url := serve(t, answer(200, ""))
	if err := newClient(t, url, client.NoRetry).DeleteProduct(t.Context(), "x"); err == nil {
		t.Error("DELETE answered 200 instead of 204: no error")
	}
}

func TestCheckResponse(t *testing.T) {
	_, url := serve(t, answer(415, `{"error": "UNSUPPORTED_MEDIA_TYPE", "message": "send JSON"}`), answer(204, ""))
	resp, err := http.Post(url+"/products", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := client.CheckResponse(resp); !errors.Is(err, client.ErrUnsupportedMediaType) {
		t.Errorf("CheckResponse: %v", err)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := client.CheckResponse(resp); err != nil {
		t.Errorf("CheckResponse of a 204: %v", err)
	}
}

// TestCodesAreTheContracts: client.Codes holds every code the server can
// answer (the constants of gateway/errors.go) and every code the OpenAPI
// document names, and nothing else.
func TestCodesAreTheContracts(t *testing.T) {
	var have []string
	for _, c := range client.Codes {
		have = append(have, string(c))
	}
	slices.Sort(have)

	// The gateway's constants.
	f, err := parser.ParseFile(token.NewFileSet(), "../gateway/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var server []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && strings.HasPrefix(vs.Names[0].Name, "Code") && len(vs.Values) == 1 {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				server = append(server, s)
			}
		}
		return true
	})
	slices.Sort(server)
	if !slices.Equal(have, server) {
		t.Errorf("client.Codes %v\ngateway/errors.go %v", have, server)
	}

	// The document's: the enums of the "error" property of every schema.
	raw, err := os.ReadFile("../gateway/apidocs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				AllOf []struct {
					Properties map[string]struct {
						Enum []string `yaml:"enum"`
					} `yaml:"properties"`
				} `yaml:"allOf"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, s := range doc.Components.Schemas {
		for _, part := range s.AllOf {
			for _, e := range part.Properties["error"].Enum {
				if !slices.Contains(documented, e) {
					documented = append(documented, e)
				}
			}
		}
	}
	// NOT_FOUND and METHOD_NOT_ALLOWED answer requests the document does
	// not describe (no such route or method), so no operation lists them.
	documented = append(documented, "NOT_FOUND", "METHOD_NOT_ALLOWED")
	slices.Sort(documented)
	if !slices.Equal(have, documented) {
		t.Errorf("client.Codes %v\nopenapi.yaml %v", have, documented)
	}
}
