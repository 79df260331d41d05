package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// Pager walks a listing (GET /products, GET /orders) page by page: the
// first page is the listing's, each next one the target of the previous
// answer's Link rel="next" header, until an answer has none. Reading a
// page is a read: it is retried as the Client's Retry says.
//
//	pager := c.ListProducts(client.ListProductsOptions{Limit: 100})
//	for pager.More() {
//		page, err := pager.NextPage(ctx)
//		…
//	}
//
// or, item by item, for p, err := range pager.All(ctx). A Pager is not
// safe for concurrent use.
type Pager[T any] struct {
	c     *Client
	first func(ctx context.Context) (*http.Response, error)
	// next is the URL of the next page once the first was read; done is
	// set when an answer had no next link.
	next    string
	started bool
	done    bool
}

// ErrNoMorePages is NextPage's error after the last page.
var ErrNoMorePages = errors.New("client: no more pages")

// More reports whether there is a page left to read.
func (p *Pager[T]) More() bool { return !p.done }

// NextPage reads the next page. After an error the same page can be
// asked for again.
func (p *Pager[T]) NextPage(ctx context.Context) ([]T, error) {
	if p.done {
		return nil, ErrNoMorePages
	}
	var link string
	send := func() (*http.Response, error) {
		var resp *http.Response
		var err error
		if !p.started {
			resp, err = p.first(ctx)
		} else {
			resp, err = p.c.get(ctx, p.next)
		}
		if err == nil {
			link = resp.Header.Get("Link")
		}
		return resp, err
	}
	var page []T
	if err := p.c.call(ctx, true, http.StatusOK, &page, send); err != nil {
		return nil, err
	}
	next, err := p.c.nextPage(link)
	if err != nil {
		return nil, err
	}
	p.started, p.next, p.done = true, next, next == ""
	return page, nil
}

// All returns every item of the remaining pages; an error ends it.
func (p *Pager[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for p.More() {
			page, err := p.NextPage(ctx)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page {
				if !yield(item, nil) {
					return
				}
			}
		}
	}
}

// get sends GET rawURL as the generated requests are sent.
func (c *Client) get(ctx context.Context, rawURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	return c.doer.Do(req)
}

// nextPage returns the absolute URL of a Link header's rel="next"
// target, or "" if it has none. The target must be on the client's own
// server: a link elsewhere is an error, not a request.
func (c *Client) nextPage(header string) (string, error) {
	target, ok, err := nextLink(header)
	if err != nil || !ok {
		return "", err
	}
	ref, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("client: Link %q: %w", header, err)
	}
	u := c.base.ResolveReference(ref)
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return "", fmt.Errorf("client: Link %q points away from %s://%s", header, c.base.Scheme, c.base.Host)
	}
	return u.String(), nil
}

// nextLink finds the target of rel="next" in an RFC 8288 Link header:
// `<target>; rel="next"`, possibly among other links and parameters.
func nextLink(header string) (target string, ok bool, err error) {
	rest := strings.TrimSpace(header)
	for rest != "" {
		if rest[0] != '<' {
			return "", false, fmt.Errorf("client: malformed Link header %q", header)
		}
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return "", false, fmt.Errorf("client: malformed Link header %q", header)
		}
		target, rest = rest[1:end], rest[end+1:]
		// Parameters up to the next link (a comma outside quotes).
		var params string
		inQuote := false
		i := 0
		for ; i < len(rest); i++ {
			if rest[i] == '"' {
				inQuote = !inQuote
			}
			if rest[i] == ',' && !inQuote {
				break
			}
		}
		params, rest = rest[:i], strings.TrimLeft(rest[min(i+1, len(rest)):], " \t")
		for _, param := range strings.Split(params, ";") {
			name, value, found := strings.Cut(strings.TrimSpace(param), "=")
			if !found || !strings.EqualFold(strings.TrimSpace(name), "rel") {
				continue
			}
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(value), `"`)) {
				if strings.EqualFold(rel, "next") {
					return target, true, nil
				}
			}
		}
	}
	return "", false, nil
}
