package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/products"
)

// Page sizes of the listings.
const (
	defaultLimit = 50
	maxLimit     = products.MaxPage
)

func (g *Gateway) createProduct(c echo.Context) error {
	body, err := readJSON(c, g.cfg.BodyLimit)
	if err != nil {
		return err
	}
	p, err := decodeProduct(body)
	if err != nil {
		return err
	}
	if err := g.products.Create(c.Request().Context(), p); err != nil {
		return err
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte {
		return append(appendString(append(b, `{"id":`...), p.ID), '}')
	})
}

// productID returns the path's product id; an id that cannot exist is not
// looked up.
func productID(c echo.Context) (string, error) {
	id := pathParam(c, "id")
	if !products.ValidID(id) {
		return "", &products.NotFoundError{ID: clip(id)}
	}
	return id, nil
}

// pathParam returns a path parameter percent-decoded exactly once: echo
// routes on the escaped path when the request's escapes are not the
// canonical ones (GET /products/%7E), and then hands the parameter over
// still escaped; otherwise the path, and so the parameter, is decoded
// already. A parameter that does not decode is returned as it is (no id
// has a '%', so it names nothing).
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v
	}
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

func (g *Gateway) getProduct(c echo.Context) error {
	id, err := productID(c)
	if err != nil {
		return err
	}
	if c.Request().Method == http.MethodHead {
		// The headers of GET but for Content-Length, which only the body
		// would tell (RFC 9110 9.3.2 allows leaving it out).
		ok, err := g.products.Exists(c.Request().Context(), id)
		if err != nil {
			return err
		}
		if !ok {
			return &products.NotFoundError{ID: id}
		}
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		return c.NoContent(http.StatusOK)
	}
	p, err := g.products.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte { return appendProduct(b, &p) })
}

func (g *Gateway) updateProduct(c echo.Context) error {
	id, err := productID(c)
	if err != nil {
		return err
	}
	body, err := readJSON(c, g.cfg.BodyLimit)
	if err != nil {
		return err
	}
	patch, err := decodePatch(body)
	if err != nil {
		return err
	}
	p, err := g.products.Update(c.Request().Context(), id, patch)
	if err != nil {
		return err
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte { return appendProduct(b, &p) })
}

func (g *Gateway) deleteProduct(c echo.Context) error {
	id, err := productID(c)
	if err != nil {
		return err
	}
	if err := g.products.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (g *Gateway) listProducts(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	cursor := c.QueryParam("cursor")
	page, err := g.products.List(c.Request().Context(), cursor, limit)
	if err != nil {
		return err
	}
	if page.Next != "" {
		setNextLink(c, "/products", url.Values{"limit": {strconv.Itoa(limit)}, "cursor": {page.Next}})
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte { return appendProducts(b, page.Products) })
}

// queryLimit reads the limit query parameter: 1 to 1000, default 50.
func queryLimit(c echo.Context) (int, error) {
	n, err := queryInt(c, "limit", defaultLimit, 1, maxLimit)
	return int(n), err
}

// queryInt reads an integer query parameter in [lowest, highest], or def
// when it is absent. A value that is not an integer is BAD_REQUEST; one out
// of range, however large, is VALIDATION_ERROR.
func queryInt(c echo.Context, name string, def, lowest, highest int64) (int64, error) {
	if !c.QueryParams().Has(name) {
		return def, nil
	}
	n, err := strconv.ParseInt(c.QueryParam(name), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && (n < lowest || n > highest):
		return 0, validationError(fmt.Sprintf("%s: must be from %d to %d", name, lowest, highest))
	case err != nil:
		return 0, badRequest(name + ": must be an integer")
	}
	return n, nil
}

// setNextLink announces the next page in an RFC 8288 Link header.
func setNextLink(c echo.Context, path string, q url.Values) {
	c.Response().Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}
