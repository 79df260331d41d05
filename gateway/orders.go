package gateway

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// orderLine is an order line as GET /orders lists it.
type orderLine struct {
	ID        int64  `json:"id"`
	ProductID string `json:"product_id"`
	Price     string `json:"price"`
	Quantity  int64  `json:"quantity"`
}

// orderDoc is an order as GET /orders lists it.
type orderDoc struct {
	ID           int64       `json:"id"`
	OrderDetails []orderLine `json:"order_details"`
}

// enrichedLine is an order line as GET /orders/{id} returns it.
type enrichedLine struct {
	orderLine
	Image   string            `json:"image"`
	Product *products.Product `json:"product"`
}

type enrichedOrder struct {
	ID           int64          `json:"id"`
	OrderDetails []enrichedLine `json:"order_details"`
}

func toLine(l orders.Line) orderLine {
	return orderLine{ID: l.ID, ProductID: l.ProductID, Price: l.Price.StringFixed(2), Quantity: l.Quantity}
}

func toOrderDoc(o orders.Order) orderDoc {
	doc := orderDoc{ID: o.ID, OrderDetails: make([]orderLine, len(o.Lines))}
	for i, l := range o.Lines {
		doc.OrderDetails[i] = toLine(l)
	}
	return doc
}

// orderID returns the path's order id; anything but a positive integer
// names no order.
func orderID(c echo.Context) (int64, error) {
	raw := c.Param("id")
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
	if key := c.Request().Header.Get(HeaderIdempotencyKey); key != "" {
		if !validKey(key) {
			return badRequest("Idempotency-Key: must be 1 to 255 visible ASCII characters")
		}
		return g.placeOnce(c, key, lines)
	}
	o, err := g.orders.Place(c.Request().Context(), lines)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int64{"id": o.ID})
}

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
	ids := make([]string, 0, len(o.Lines))
	for _, l := range o.Lines {
		ids = append(ids, l.ProductID)
	}
	found, err := g.products.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	doc := enrichedOrder{ID: o.ID, OrderDetails: make([]enrichedLine, len(o.Lines))}
	for i, l := range o.Lines {
		line := enrichedLine{orderLine: toLine(l), Image: g.cfg.ImageRoot + "/" + l.ProductID + ".jpg"}
		if p, ok := found[l.ProductID]; ok {
			line.Product = &p
		}
		doc.OrderDetails[i] = line
	}
	return c.JSON(http.StatusOK, doc)
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
	docs := make([]orderDoc, len(list))
	for i, o := range list {
		docs[i] = toOrderDoc(o)
	}
	return c.JSON(http.StatusOK, docs)
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
	return c.JSON(http.StatusOK, toOrderDoc(o))
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
