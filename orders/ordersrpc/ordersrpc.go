// Package ordersrpc runs the orders module in its own process: Handler
// serves the orders module (an orders.Service) over Connect, and Client
// calls it with the very methods the gateway calls in one process. Every
// method is one call over the wire.
package ordersrpc

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"github.com/shopspring/decimal"

	ordersv1 "github.com/airshipltd/airship/api/airship/orders/v1"
	"github.com/airshipltd/airship/api/airship/orders/v1/ordersv1connect"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/orders"
)

// Limits bound the messages of the orders module's calls (see
// rpc.Limits), sized from the largest legitimate ones in the protobuf
// encoding. An order line is at most about 235 bytes: ids, a product id of
// 128 bytes, a price of 19, a quantity, an incarnation of 64. The largest
// reply is a List of one more than a page (orders.MaxPage, 1,000) of
// orders of orders.MaxLines (100) lines: 23.5 MB. Requests are far
// smaller: a Place of 100 lines is under 20 KB, whatever the size of the
// JSON body the gateway read it from (body_limit, 1 MiB by default, which
// spacing can fill), and a PlaceOnce adds a key of 255 bytes.
var Limits = rpc.Limits{Request: 256 << 10, Reply: 32 << 20}

// NewHandler returns the path and handler of the orders module's Connect
// service on svc, with opts (such as rpc.Observe).
func NewHandler(svc *orders.Service, opts ...connect.HandlerOption) (string, http.Handler) {
	path, h := ordersv1connect.NewOrderServiceHandler(handler{svc}, append(rpc.HandlerOptions(Limits), opts...)...)
	return path, rpc.LimitBodies(h, Limits)
}

type handler struct{ s *orders.Service }

var _ ordersv1connect.OrderServiceHandler = handler{}

// Every call is held to the orders module's rules, which the service
// itself applies to any caller (orders.NewLinesProblems,
// orders.UpdatesProblems, orders.KeyProblem): the handlers read the wire's
// text (prices) with the same rules and messages (orders.ParseLine), and
// check a key before the call, whose refusals are the key's outcome.

func (h handler) Place(ctx context.Context, req *connect.Request[ordersv1.PlaceRequest]) (*connect.Response[ordersv1.PlaceResponse], error) {
	lines, err := newLinesFromWire(req.Msg.GetLines())
	if err != nil {
		return nil, rpc.ServerError(ctx, err)
	}
	o, err := h.s.Place(ctx, lines)
	return rpc.Reply(ctx, &ordersv1.PlaceResponse{Order: orderToWire(o)}, err)
}

func (h handler) PlaceOnce(ctx context.Context, req *connect.Request[ordersv1.PlaceOnceRequest]) (*connect.Response[ordersv1.PlaceOnceResponse], error) {
	if p := orders.KeyProblem(req.Msg.GetKey()); p != "" {
		return nil, rpc.ServerError(ctx, errs.Problems([]string{"Idempotency-Key: " + p}))
	}
	lines, err := newLinesFromWire(req.Msg.GetLines())
	if err != nil {
		return nil, rpc.ServerError(ctx, err)
	}
	placed, err := h.s.PlaceOnce(ctx, req.Msg.GetKey(), lines)
	out := &ordersv1.PlaceOnceResponse{OrderId: placed.OrderID, Replayed: placed.Replayed}
	// A refusal is the key's outcome, given again to every retry; a
	// failure worth retrying is the call's error.
	if err != nil && (placed.Replayed || !errs.Of(err).Retryable()) {
		out.Refusal = rpc.Portable(errs.Encode(err))
		err = nil
	}
	return rpc.Reply(ctx, out, err)
}

func (h handler) Get(ctx context.Context, req *connect.Request[ordersv1.GetRequest]) (*connect.Response[ordersv1.GetResponse], error) {
	if !orders.ValidID(req.Msg.GetId()) {
		return nil, rpc.ServerError(ctx, &orders.NotFoundError{ID: req.Msg.GetId()})
	}
	o, err := h.s.Get(ctx, req.Msg.GetId())
	return rpc.Reply(ctx, &ordersv1.GetResponse{Order: orderToWire(o)}, err)
}

func (h handler) List(ctx context.Context, req *connect.Request[ordersv1.ListRequest]) (*connect.Response[ordersv1.ListResponse], error) {
	// The gateway asks for one order more than a page, to learn whether
	// another page follows.
	var problems []string
	if req.Msg.GetAfter() < 0 {
		problems = append(problems, "after: must not be negative")
	}
	if l := req.Msg.GetLimit(); l < 1 || l > orders.MaxPage+1 {
		problems = append(problems, fmt.Sprintf("limit: must be from 1 to %d", orders.MaxPage+1))
	}
	if problems != nil {
		return nil, rpc.ServerError(ctx, errs.Problems(problems))
	}
	list, err := h.s.List(ctx, req.Msg.GetAfter(), int(req.Msg.GetLimit()))
	out := &ordersv1.ListResponse{Orders: make([]*ordersv1.Order, len(list))}
	for i, o := range list {
		out.Orders[i] = orderToWire(o)
	}
	return rpc.Reply(ctx, out, err)
}

func (h handler) Update(ctx context.Context, req *connect.Request[ordersv1.UpdateRequest]) (*connect.Response[ordersv1.UpdateResponse], error) {
	if !orders.ValidID(req.Msg.GetId()) {
		return nil, rpc.ServerError(ctx, &orders.NotFoundError{ID: req.Msg.GetId()})
	}
	// The wire's prices are text: read them here; every other rule of a
	// change is the service's (orders.UpdatesProblems).
	wire := req.Msg.GetUpdates()
	updates := make([]orders.LineUpdate, len(wire))
	var problems []string
	for i, u := range wire {
		updates[i] = orders.LineUpdate{ID: u.GetId(), Quantity: u.Quantity}
		if u.Price != nil {
			p, problem := orders.ParsePrice(u.GetPrice())
			if problem != "" {
				problems = append(problems, fmt.Sprintf("order_details[%d].price: %s", i, problem))
				continue
			}
			updates[i].Price = &p
		}
	}
	if problems != nil {
		return nil, rpc.ServerError(ctx, errs.Problems(problems))
	}
	o, err := h.s.Update(ctx, req.Msg.GetId(), updates)
	return rpc.Reply(ctx, &ordersv1.UpdateResponse{Order: orderToWire(o)}, err)
}

func (h handler) Delete(ctx context.Context, req *connect.Request[ordersv1.DeleteRequest]) (*connect.Response[ordersv1.DeleteResponse], error) {
	if !orders.ValidID(req.Msg.GetId()) {
		return nil, rpc.ServerError(ctx, &orders.NotFoundError{ID: req.Msg.GetId()})
	}
	err := h.s.Delete(ctx, req.Msg.GetId())
	return rpc.Reply(ctx, &ordersv1.DeleteResponse{}, err)
}

// Client is the orders module at a URL, with the methods of
// *orders.Service that the gateway calls (its Orders).
type Client struct {
	c       ordersv1connect.OrderServiceClient
	http    *http.Client
	baseURL string
}

// NewClient returns a client of the orders module at baseURL
// (http://host:port), calling it with httpClient and opts (see
// rpc.ClientOptions), its calls held to Limits.
func NewClient(httpClient *http.Client, baseURL string, opts ...connect.ClientOption) *Client {
	opts = append(rpc.LimitOptions(Limits), opts...)
	return &Client{c: ordersv1connect.NewOrderServiceClient(httpClient, baseURL, opts...), http: httpClient, baseURL: baseURL}
}

// Ready reports whether the orders module is ready (its /readyz).
func (c *Client) Ready(ctx context.Context) error {
	return rpc.Ready(ctx, c.http, c.baseURL, orders.ErrUnavailable)
}

// Close closes the client's idle connections to the orders module.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func fail(err error) error { return rpc.ClientError(err, orders.ErrUnavailable) }

// Place places an order.
func (c *Client) Place(ctx context.Context, lines []orders.NewLine) (orders.Order, error) {
	resp, err := c.c.Place(ctx, connect.NewRequest(&ordersv1.PlaceRequest{Lines: newLinesToWire(lines)}))
	if err != nil {
		return orders.Order{}, fail(err)
	}
	return orderFromWire(resp.Msg.GetOrder())
}

// PlaceOnce places an order at most once per idempotency key.
func (c *Client) PlaceOnce(ctx context.Context, key string, lines []orders.NewLine) (orders.Placed, error) {
	resp, err := c.c.PlaceOnce(ctx, connect.NewRequest(&ordersv1.PlaceOnceRequest{Key: key, Lines: newLinesToWire(lines)}))
	if err != nil {
		return orders.Placed{}, fail(err)
	}
	placed := orders.Placed{OrderID: resp.Msg.GetOrderId(), Replayed: resp.Msg.GetReplayed()}
	if r := resp.Msg.GetRefusal(); r != nil {
		return placed, errs.Decode(rpc.FromWire(r))
	}
	return placed, nil
}

// Get returns one order.
func (c *Client) Get(ctx context.Context, id int64) (orders.Order, error) {
	resp, err := c.c.Get(ctx, connect.NewRequest(&ordersv1.GetRequest{Id: id}))
	if err != nil {
		return orders.Order{}, fail(err)
	}
	return orderFromWire(resp.Msg.GetOrder())
}

// List returns up to limit orders with id > after, oldest first.
func (c *Client) List(ctx context.Context, after int64, limit int) ([]orders.Order, error) {
	resp, err := c.c.List(ctx, connect.NewRequest(&ordersv1.ListRequest{After: after, Limit: int32(min(limit, 1<<30))}))
	if err != nil {
		return nil, fail(err)
	}
	out := make([]orders.Order, len(resp.Msg.GetOrders()))
	for i, o := range resp.Msg.GetOrders() {
		if out[i], err = orderFromWire(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Update changes the price and quantity of existing lines.
func (c *Client) Update(ctx context.Context, id int64, updates []orders.LineUpdate) (orders.Order, error) {
	req := &ordersv1.UpdateRequest{Id: id, Updates: make([]*ordersv1.LineUpdate, len(updates))}
	for i, u := range updates {
		w := &ordersv1.LineUpdate{Id: u.ID, Quantity: u.Quantity}
		if u.Price != nil {
			p := u.Price.StringFixed(2)
			w.Price = &p
		}
		req.Updates[i] = w
	}
	resp, err := c.c.Update(ctx, connect.NewRequest(req))
	if err != nil {
		return orders.Order{}, fail(err)
	}
	return orderFromWire(resp.Msg.GetOrder())
}

// Delete removes an order.
func (c *Client) Delete(ctx context.Context, id int64) error {
	_, err := c.c.Delete(ctx, connect.NewRequest(&ordersv1.DeleteRequest{Id: id}))
	return fail(err)
}

func newLinesToWire(lines []orders.NewLine) []*ordersv1.NewLine {
	out := make([]*ordersv1.NewLine, len(lines))
	for i, l := range lines {
		out[i] = &ordersv1.NewLine{ProductId: l.ProductID, Price: l.Price.String(), Quantity: l.Quantity}
	}
	return out
}

// newLinesFromWire reads the lines of an order to place, held to the
// rules of the API: a price is read as the API reads it (refused, never
// rounded, with more than two decimals).
func newLinesFromWire(lines []*ordersv1.NewLine) ([]orders.NewLine, error) {
	if p := orders.LinesProblem(len(lines)); p != "" {
		return nil, errs.Problems([]string{"order_details: " + p})
	}
	out := make([]orders.NewLine, len(lines))
	var problems []string
	for i, l := range lines {
		line, p := orders.ParseLine(fmt.Sprintf("order_details[%d].", i), l.GetProductId(), l.GetPrice(), l.GetQuantity())
		out[i], problems = line, append(problems, p...)
	}
	return out, errs.Problems(problems)
}

func orderToWire(o orders.Order) *ordersv1.Order {
	out := &ordersv1.Order{Id: o.ID, Lines: make([]*ordersv1.Line, len(o.Lines))}
	for i, l := range o.Lines {
		out.Lines[i] = &ordersv1.Line{Id: l.ID, ProductId: l.ProductID, Price: l.Price.StringFixed(2),
			Quantity: l.Quantity, Incarnation: l.Incarnation}
	}
	return out
}

func orderFromWire(o *ordersv1.Order) (orders.Order, error) {
	out := orders.Order{ID: o.GetId(), Lines: make([]orders.Line, len(o.GetLines()))}
	for i, l := range o.GetLines() {
		p, err := decimal.NewFromString(l.GetPrice())
		if err != nil {
			return orders.Order{}, fmt.Errorf("order %d line %d: price %q: %w", o.GetId(), l.GetId(), l.GetPrice(), err)
		}
		out.Lines[i] = orders.Line{ID: l.GetId(), ProductID: l.GetProductId(), Price: p, Quantity: l.GetQuantity(),
			Incarnation: l.GetIncarnation()}
	}
	return out, nil
}
