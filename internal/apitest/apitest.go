// Package apitest checks HTTP traffic against the API's OpenAPI document,
// so that the end-to-end tests catch any drift between gateway/apidocs/openapi.yaml
// and what the server really accepts and answers.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/airshipltd/airship/gateway/apidocs"
)

// LoadOpenAPI parses and validates the published OpenAPI document.
func LoadOpenAPI(ctx context.Context) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(apidocs.YAML())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	return doc, nil
}

// router is built once from the published document.
var router = sync.OnceValues(func() (routers.Router, error) {
	doc, err := LoadOpenAPI(context.Background())
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// NewTransport returns a RoundTripper that sends requests through base
// (http.DefaultTransport if nil) and checks each exchange against the
// OpenAPI document, reporting every mismatch with t.Errorf:
//
//   - a response whose status the operation does not document, or whose
//     body or headers do not match the documented schema;
//   - a request the document calls invalid that the server accepted (2xx).
//
// A request the document calls invalid that the server refuses (4xx) is
// a negative test doing its job: only its response is checked. Requests
// to paths or methods the document does not describe (the NOT_FOUND and
// METHOD_NOT_ALLOWED cases, the documentation pages) are not checked.
func NewTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	r, err := router()
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return &transport{t: t, base: base, router: r}
}

type transport struct {
	t      testing.TB
	base   http.RoundTripper
	router routers.Router
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("apitest: read request body: %w", err)
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}

	route, pathParams, err := tr.router.FindRoute(req)
	if err != nil {
		// No such path or method in the document: nothing to check.
		if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
			return tr.base.RoundTrip(req)
		}
		tr.t.Errorf("apitest: %s %s: find route: %v", req.Method, req.URL.Path, err)
		return tr.base.RoundTrip(req)
	}

	// Validate a copy: the validator may add defaults to the request.
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	opts.WithCustomSchemaErrorFunc(schemaError)
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: pathParams, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)

	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return resp, fmt.Errorf("apitest: read response body: %w", err)
	}

	what := fmt.Sprintf("%s %s → %d %s", req.Method, req.URL.RequestURI(), resp.StatusCode, truncate(respBody))
	if reqErr != nil && resp.StatusCode < 400 {
		tr.t.Errorf("apitest: openapi.yaml rejects the request but the server accepted it: %s\nrequest body: %s\n%v",
			what, truncate(reqBody), reqErr)
	}
	respErr := openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                opts,
	})
	if respErr != nil {
		tr.t.Errorf("apitest: response does not match openapi.yaml: %s\n%v", what, respErr)
	}
	return resp, nil
}

// schemaError words a schema mismatch in one line, without the schema.
func schemaError(err *openapi3.SchemaError) string {
	msg := err.Reason
	if err.Origin != nil {
		msg += ": " + err.Origin.Error()
	}
	if p := err.JSONPointer(); len(p) > 0 {
		return fmt.Sprintf("at /%s: %s", strings.Join(p, "/"), msg)
	}
	return msg
}

func truncate(b []byte) string {
	const most = 512
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}
