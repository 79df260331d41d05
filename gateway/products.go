package gateway

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/products"
)

// Page sizes of the listings.
const (
	defaultLimit = 50
	maxLimit     = 1000
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
	return c.JSON(http.StatusOK, map[string]string{"id": p.ID})
}

// productID returns the path's product id; an id that cannot exist is not
// looked up.
func productID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !products.ValidID(id) {
		return "", &products.NotFoundError{ID: id}
	}
	return id, nil
}

func (g *Gateway) getProduct(c echo.Context) error {
	id, err := productID(c)
	if err != nil {
		return err
	}
	p, err := g.products.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
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
	return c.JSON(http.StatusOK, p)
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
	return c.JSON(http.StatusOK, page.Products)
}

// queryLimit reads the limit query parameter: 1 to 1000, default 50.
func queryLimit(c echo.Context) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return defaultLimit, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, badRequest("limit: must be an integer")
	}
	if n < 1 || n > maxLimit {
		return 0, validationError("limit: must be from 1 to 1000")
	}
	return int(n), nil
}

// setNextLink announces the next page in an RFC 8288 Link header.
func setNextLink(c echo.Context, path string, q url.Values) {
	c.Response().Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}
