package app_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestHEADWhereverGET: every GET route answers HEAD with GET's status and
// headers and no body (RFC 9110 9.3.2).
func TestHEADWhereverGET(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		s.expect(s.do("POST", "/products", odyssey), 200, "")
		s.expect(s.do("POST", "/orders", orderOfOne), 200, "")
		for _, path := range []string{
			"/healthz", "/readyz", "/products", "/products?limit=1", "/products/the_odyssey", "/products/nope",
			"/orders", "/orders/1", "/orders/999", "/orders/abc",
			"/openapi.json", "/openapi.yaml", "/docs", "/docs/index.html", "/redoc", "/redoc/redoc.standalone.js",
		} {
			identity := []string{"Accept-Encoding", "identity"} // compare like with like
			get, head := s.plain("GET", path, "", identity...), s.plain("HEAD", path, "", identity...)
			if head.status != get.status || len(head.body) != 0 {
				t.Errorf("HEAD %s = %d with %d body bytes; GET = %d", path, head.status, len(head.body), get.status)
			}
			if hc, gc := head.header.Get("Content-Type"), get.header.Get("Content-Type"); hc != gc {
				t.Errorf("HEAD %s Content-Type %q; GET %q", path, hc, gc)
			}
			if cl := head.header.Get("Content-Length"); get.status == 200 && cl != "" && cl != get.header.Get("Content-Length") {
				t.Errorf("HEAD %s Content-Length %s; GET %s", path, cl, get.header.Get("Content-Length"))
			}
		}
		// HEAD is not a way around the method rules.
		s.expectError(s.plain("PUT", "/healthz", ""), 405, "METHOD_NOT_ALLOWED")
	})
}

// TestPathIDsDecodedOnce: a percent-encoded id in the path names the
// product or order it decodes to, decoded exactly once; "." and ".."
// cannot be created (clients normalise them out of paths).
func TestPathIDsDecodedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		for _, id := range []string{"~", "h1", "A"} {
			s.expect(s.do("POST", "/products", strings.Replace(odyssey, "the_odyssey", id, 1)), 200, "")
		}
		s.expect(s.do("POST", "/orders", strings.Replace(orderOfOne, "the_odyssey", "h1", 1)), 200, `{"id": 1}`)
		for path, id := range map[string]string{"/products/%7E": "~", "/products/%7e": "~", "/products/h%31": "h1", "/products/%68%31": "h1"} {
			r := s.plain("GET", path, "")
			var p struct{ ID string }
			if r.status != 200 || json.Unmarshal(r.body, &p) != nil || p.ID != id {
				t.Errorf("GET %s = %d %s; want product %q", path, r.status, r.body, id)
			}
		}
		// Decoded once: %2541 is "%41", not "A".
		s.expectError(s.plain("GET", "/products/%2541", ""), 404, "PRODUCT_NOT_FOUND")
		s.expect(s.plain("GET", "/orders/%31", ""), 200, "")
		s.expectError(s.plain("GET", "/orders/%2531", ""), 404, "ORDER_NOT_FOUND")
		if r := s.plain("DELETE", "/products/%7E", ""); r.status != 204 {
			t.Fatalf("DELETE /products/%%7E = %d %s", r.status, r.body)
		}
		s.expectError(s.do("GET", "/products/~", ""), 404, "PRODUCT_NOT_FOUND")
		for _, id := range []string{".", ".."} {
			s.expectError(s.do("POST", "/products", strings.Replace(odyssey, "the_odyssey", id, 1)), 400, "VALIDATION_ERROR", "id")
		}
	})
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestRequestIDs: a client's X-Request-Id is used only when it is a short
// token of safe characters; anything else is replaced by a new id.
func TestRequestIDs(t *testing.T) {
	s := start(t, backends[1])
	if got := s.plain("GET", "/healthz", "", "X-Request-Id", "abc-123_X.y:z").header.Get("X-Request-Id"); got != "abc-123_X.y:z" {
		t.Fatalf("safe request id came back as %q", got)
	}
	if got := s.plain("GET", "/healthz", "").header.Get("X-Request-Id"); !uuidPattern.MatchString(got) {
		t.Fatalf("generated request id %q", got)
	}
	for _, hostile := range [][]string{
		{"X-Request-Id", strings.Repeat("a", 65)},
		{"X-Request-Id", "has space"},
		{"X-Request-Id", "<script>alert(1)</script>"},
		{"X-Request-Id", "line\u2028break"},
		{"X-Request-Id", "dup", "X-Request-Id", "dup2"},
	} {
		r := s.plain("GET", "/products/nope", "", hostile...)
		if got := r.header.Get("X-Request-Id"); !uuidPattern.MatchString(got) {
			t.Errorf("X-Request-Id %q came back as %q; want a new id", hostile[1:], got)
		}
		if bytes.Contains(r.body, []byte(hostile[1])) {
			t.Errorf("X-Request-Id %q echoed in the body %s", hostile[1], r.body)
		}
	}
}

// TestResponseHeaders: every response says nosniff, HTML pages name their
// charset, and a repeated Idempotency-Key is refused.
func TestResponseHeaders(t *testing.T) {
	s := start(t, backends[1])
	for _, path := range []string{"/healthz", "/products", "/products/nope", "/nowhere", "/docs", "/redoc", "/openapi.yaml"} {
		r := s.plain("GET", path, "")
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q; want nosniff", path, got)
		}
		if ct := r.header.Get("Content-Type"); strings.HasPrefix(ct, "text/") && !strings.Contains(strings.ToLower(ct), "charset=utf-8") {
			t.Errorf("GET %s: Content-Type %q names no charset", path, ct)
		}
	}
	s.expect(s.do("POST", "/products", odyssey), 200, "")
	s.expectError(s.plain("POST", "/orders", orderOfOne, "Content-Type", "application/json",
		"Idempotency-Key", "k1", "Idempotency-Key", "k2"), 400, "BAD_REQUEST", "Idempotency-Key")
	s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey) // nothing ordered
}
