package gateway

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// orderID returns the path's order id; anything but a positive integer
// names no order.
func orderID(c echo.Context) (int64, error) {
	raw := pathParam(c, "id")
	if !canonicalID.MatchString(raw) {
		return 0, newError(http.StatusNotFound, CodeOrderNotFound, "Order ID %s does not exist", clip(raw))
	}
	id, _ := strconv.ParseInt(raw, 10, 64)
	if id > maxCount {
		return 0, &orders.NotFoundError{ID: id}
	}
	return id, nil
}

// canonicalID is an order id as airship writes them: "01" and "+1" name no order.
var canonicalID = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)

func (g *Gateway) createOrder(c echo.Context) error {
	body, err := readJSON(c, g.cfg.BodyLimit)
	if err != nil {
		return err
	}
	lines, err := decodeNewOrder(body)
	if err != nil {
		return err
	}
	var id int64
	if keys := c.Request().Header.Values(HeaderIdempotencyKey); len(keys) > 0 {
		if len(keys) > 1 {
			return badRequest("Idempotency-Key: give it once, not " + strconv.Itoa(len(keys)) + " times")
		}
		if problem := orders.KeyProblem(keys[0]); problem != "" {
			return badRequest("Idempotency-Key: " + problem)
		}
		placed, err := g.orders.PlaceOnce(c.Request().Context(), keys[0], lines)
		if placed.Replayed {
			c.Response().Header().Set(HeaderIdempotentReplayed, "true")
		}
		if err != nil {
			return err
		}
		id = placed.OrderID
	} else {
		o, err := g.orders.Place(c.Request().Context(), lines)
		if err != nil {
			return err
		}
		id = o.ID
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte {
		return append(strconv.AppendInt(append(b, `{"id":`...), id, 10), '}')
	})
}

// The Idempotency-Key headers (IETF httpapi idempotency-key draft): a
// POST /orders with a key is safe to retry; a response that repeats an
// earlier one says so.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

// getOrder returns the order enriched with its products, fetched by id for
// that order's lines only, in one round trip.
func (g *Gateway) getOrder(c echo.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	o, err := g.orders.Get(ctx, id)
	if err != nil {
		return err
	}
	var p products.Product
	found, err := g.linesProducts(ctx, &o, &p)
	if err != nil {
		return err
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte {
		return appendEnrichedOrder(b, &o, g.cfg.ImageRoot, found)
	})
}

// linesProducts returns the products of an order's lines that exist:
// for most orders, of one line, with one Get; else with one GetMany.
func (g *Gateway) linesProducts(ctx context.Context, o *orders.Order, p *products.Product) (lineProducts, error) {
	if len(o.Lines) == 1 {
		var err error
		if *p, err = g.products.Get(ctx, o.Lines[0].ProductID); err != nil {
			var nf *products.NotFoundError
			if errors.As(err, &nf) {
				return lineProducts{}, nil
			}
			return lineProducts{}, err
		}
		return lineProducts{one: p}, nil
	}
	ids := make([]string, 0, len(o.Lines))
	for _, l := range o.Lines {
		ids = append(ids, l.ProductID)
	}
	found, err := g.products.GetMany(ctx, ids)
	return lineProducts{byID: found}, err
}

func (g *Gateway) listOrders(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	after, err := queryInt(c, "after", 0, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	after = min(after, maxCount) // no order id is larger
	// One more than a page tells whether there is a next one.
	list, err := g.orders.List(c.Request().Context(), after, limit+1)
	if err != nil {
		return err
	}
	if len(list) > limit {
		list = list[:limit]
		q := url.Values{"limit": {strconv.Itoa(limit)}, "after": {strconv.FormatInt(list[limit-1].ID, 10)}}
		setNextLink(c, "/orders", q)
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte { return appendOrders(b, list) })
}

func (g *Gateway) updateOrder(c echo.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	body, err := readJSON(c, g.cfg.BodyLimit)
	if err != nil {
		return err
	}
	updates, err := decodeOrderUpdate(body)
	if err != nil {
		return err
	}
	o, err := g.orders.Update(c.Request().Context(), id, updates)
	if err != nil {
		return err
	}
	return sendJSON(c, http.StatusOK, func(b []byte) []byte { return appendOrder(b, &o) })
}

func (g *Gateway) deleteOrder(c echo.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	if err := g.orders.Delete(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
