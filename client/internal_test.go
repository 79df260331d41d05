package client

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterHeader(t *testing.T) {
	for _, c := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999", 24 * time.Hour, true},      // capped
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, true}, // in the past: at once
	} {
		got, ok := retryAfter(c.header)
		if got != c.want || ok != c.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", c.header, got, ok, c.want, c.ok)
		}
	}
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	if got, ok := retryAfter(date); !ok || got < 58*time.Minute || got > time.Hour {
		t.Errorf("retryAfter(%q) = %v, %v; want about an hour", date, got, ok)
	}
}

func TestNextLink(t *testing.T) {
	for _, c := range []struct {
		header, want string
		ok, err      bool
	}{
		{"", "", false, false},
		{`</products?cursor=abc&limit=50>; rel="next"`, "/products?cursor=abc&limit=50", true, false},
		{`</orders?after=5>; rel=next`, "/orders?after=5", true, false},
		{`</a>; rel="prev", </b>; rel="next"`, "/b", true, false},
		{`</a>; title="x, y"; rel="prev next"`, "/a", true, false},
		{`</a>; REL="Next"`, "/a", true, false},
		{`</a>; rel="prev"`, "", false, false},
		{`/a; rel="next"`, "", false, true},
		{`</a; rel="next"`, "", false, true},
	} {
		got, ok, err := nextLink(c.header)
		if got != c.want && c.ok || ok != c.ok || (err != nil) != c.err {
			t.Errorf("nextLink(%q) = %q, %v, %v; want %q, %v, error %v", c.header, got, ok, err, c.want, c.ok, c.err)
		}
	}
}

func TestNextPageStaysOnTheServer(t *testing.T) {
	c, err := New("http://127.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]string{
		`</products?cursor=x>; rel="next"`:                    "http://127.0.0.1:8000/products?cursor=x",
		`<http://127.0.0.1:8000/orders?after=2>; rel="next"`:  "http://127.0.0.1:8000/orders?after=2",
		`<http://evil.example/products?cursor=x>; rel="next"`: "",
		`<//evil.example/products>; rel="next"`:               "",
		`<https://127.0.0.1:8000/products>; rel="next"`:       "",
	} {
		got, err := c.nextPage(header)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("nextPage(%q) = %q, %v; want %q", header, got, err, want)
		}
	}
}
