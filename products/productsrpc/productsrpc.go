// Package productsrpc runs the products module in its own process: Handler
// serves a products.Store over Connect, and Client is a products.Store that
// calls it, so that the gateway (Products) and the orders module (Stock)
// use the remote module through the very interfaces they use in one
// process. Every products.Store call is one call over the wire: GetMany
// reads an order's products and Reserve and Release move a whole order's
// stock in one call each, as they do in one Redis round trip.
package productsrpc

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	productsv1 "github.com/airshipltd/airship/api/airship/products/v1"
	"github.com/airshipltd/airship/api/airship/products/v1/productsv1connect"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/products"
)

// Limits bound the messages of the products module's calls (see
// rpc.Limits), sized from the largest legitimate ones in the protobuf
// encoding. A product is at most about 2.3 KB: an id of 128 bytes, a title
// of 512 characters of up to 4 bytes, three counts, an incarnation of 64
// bytes. The largest replies are a List page and a GetMany of
// products.MaxPage (1,000) products, 2.3 MB, and an Expired of
// products.MaxExpired (100) reservations of 100 lines of about 210 bytes,
// 2.1 MB. The largest request is a Restock of products.MaxRestockLines
// (10,000) lines, 2.1 MB; every other is under 140 KB (a GetMany of 1,000
// ids). 4 MiB each way holds them with room to spare.
var Limits = rpc.Limits{Request: 4 << 20, Reply: 4 << 20}

// NewHandler returns the path and handler of the products module's
// Connect service on store, with opts (such as rpc.Observe).
func NewHandler(store products.Store, opts ...connect.HandlerOption) (string, http.Handler) {
	path, h := productsv1connect.NewProductServiceHandler(handler{store}, append(rpc.HandlerOptions(Limits), opts...)...)
	return path, rpc.LimitBodies(h, Limits)
}

type handler struct{ s products.Store }

var _ productsv1connect.ProductServiceHandler = handler{}

// Every call is held to the products module's rules (products.IDProblem,
// Product.Problems, Patch.Problems, Reservation.Problems, ...), which the
// gateway applies to the API's requests too: another caller of the
// module's port can store nothing the API would refuse.

// refuse is the answer to a call that breaks the rules.
func refuse[T any](ctx context.Context, problems ...string) (*connect.Response[T], error) {
	return nil, rpc.ServerError(ctx, errs.Problems(problems))
}

// idProblems are the problems of a product id a call names.
func idProblems(id string) []string {
	if p := products.IDProblem(id); p != "" {
		return []string{"id: " + p}
	}
	return nil
}

func (h handler) Get(ctx context.Context, req *connect.Request[productsv1.GetRequest]) (*connect.Response[productsv1.GetResponse], error) {
	if problems := idProblems(req.Msg.GetId()); problems != nil {
		return refuse[productsv1.GetResponse](ctx, problems...)
	}
	p, err := h.s.Get(ctx, req.Msg.GetId())
	return rpc.Reply(ctx, &productsv1.GetResponse{Product: toWire(p)}, err)
}

func (h handler) GetMany(ctx context.Context, req *connect.Request[productsv1.GetManyRequest]) (*connect.Response[productsv1.GetManyResponse], error) {
	if n := len(req.Msg.GetIds()); n > products.MaxPage {
		return refuse[productsv1.GetManyResponse](ctx, fmt.Sprintf("ids: must have at most %d items", products.MaxPage))
	}
	// An id no product can have names none: an order line kept from the
	// old shop may hold one, and is shown without its product.
	ids := make([]string, 0, len(req.Msg.GetIds()))
	for _, id := range req.Msg.GetIds() {
		if products.ValidID(id) {
			ids = append(ids, id)
		}
	}
	found, err := h.s.GetMany(ctx, ids)
	out := &productsv1.GetManyResponse{Products: make([]*productsv1.Product, 0, len(found))}
	for _, p := range found {
		out.Products = append(out.Products, toWire(p))
	}
	return rpc.Reply(ctx, out, err)
}

func (h handler) Exists(ctx context.Context, req *connect.Request[productsv1.ExistsRequest]) (*connect.Response[productsv1.ExistsResponse], error) {
	if problems := idProblems(req.Msg.GetId()); problems != nil {
		return refuse[productsv1.ExistsResponse](ctx, problems...)
	}
	ok, err := h.s.Exists(ctx, req.Msg.GetId())
	return rpc.Reply(ctx, &productsv1.ExistsResponse{Exists: ok}, err)
}

func (h handler) Create(ctx context.Context, req *connect.Request[productsv1.CreateRequest]) (*connect.Response[productsv1.CreateResponse], error) {
	p := fromWire(req.Msg.GetProduct())
	if problems := p.Problems(); problems != nil {
		return refuse[productsv1.CreateResponse](ctx, problems...)
	}
	err := h.s.Create(ctx, p)
	return rpc.Reply(ctx, &productsv1.CreateResponse{}, err)
}

func (h handler) Update(ctx context.Context, req *connect.Request[productsv1.UpdateRequest]) (*connect.Response[productsv1.UpdateResponse], error) {
	m := req.Msg
	patch := products.Patch{Title: m.Title, PassengerCapacity: m.PassengerCapacity, MaximumSpeed: m.MaximumSpeed, InStock: m.InStock}
	if problems := append(idProblems(m.GetId()), patch.Problems()...); problems != nil {
		return refuse[productsv1.UpdateResponse](ctx, problems...)
	}
	p, err := h.s.Update(ctx, m.GetId(), patch)
	return rpc.Reply(ctx, &productsv1.UpdateResponse{Product: toWire(p)}, err)
}

func (h handler) Delete(ctx context.Context, req *connect.Request[productsv1.DeleteRequest]) (*connect.Response[productsv1.DeleteResponse], error) {
	if problems := idProblems(req.Msg.GetId()); problems != nil {
		return refuse[productsv1.DeleteResponse](ctx, problems...)
	}
	err := h.s.Delete(ctx, req.Msg.GetId())
	return rpc.Reply(ctx, &productsv1.DeleteResponse{}, err)
}

func (h handler) List(ctx context.Context, req *connect.Request[productsv1.ListRequest]) (*connect.Response[productsv1.ListResponse], error) {
	if l := req.Msg.GetLimit(); l < 1 || l > products.MaxPage {
		return refuse[productsv1.ListResponse](ctx, fmt.Sprintf("limit: must be from 1 to %d", products.MaxPage))
	}
	page, err := h.s.List(ctx, req.Msg.GetCursor(), int(req.Msg.GetLimit()))
	out := &productsv1.ListResponse{Next: page.Next, Products: make([]*productsv1.Product, len(page.Products))}
	for i, p := range page.Products {
		out.Products[i] = toWire(p)
	}
	return rpc.Reply(ctx, out, err)
}

func (h handler) Reserve(ctx context.Context, req *connect.Request[productsv1.ReserveRequest]) (*connect.Response[productsv1.ReserveResponse], error) {
	r := reservationFromWire(req.Msg.GetReservation())
	if problems := r.Problems(true); problems != nil {
		return refuse[productsv1.ReserveResponse](ctx, problems...)
	}
	taken, err := h.s.Reserve(ctx, r)
	return rpc.Reply(ctx, &productsv1.ReserveResponse{Taken: taken}, err)
}

func (h handler) Commit(ctx context.Context, req *connect.Request[productsv1.CommitRequest]) (*connect.Response[productsv1.CommitResponse], error) {
	r := reservationFromWire(req.Msg.GetReservation())
	if problems := r.Problems(false); problems != nil {
		return refuse[productsv1.CommitResponse](ctx, problems...)
	}
	err := h.s.Commit(ctx, r)
	return rpc.Reply(ctx, &productsv1.CommitResponse{}, err)
}

func (h handler) Release(ctx context.Context, req *connect.Request[productsv1.ReleaseRequest]) (*connect.Response[productsv1.ReleaseResponse], error) {
	r := reservationFromWire(req.Msg.GetReservation())
	if problems := r.Problems(false); problems != nil {
		return refuse[productsv1.ReleaseResponse](ctx, problems...)
	}
	err := h.s.Release(ctx, r)
	return rpc.Reply(ctx, &productsv1.ReleaseResponse{}, err)
}

func (h handler) Expired(ctx context.Context, req *connect.Request[productsv1.ExpiredRequest]) (*connect.Response[productsv1.ExpiredResponse], error) {
	if l := req.Msg.GetLimit(); l < 1 || l > products.MaxExpired {
		return refuse[productsv1.ExpiredResponse](ctx, fmt.Sprintf("limit: must be from 1 to %d", products.MaxExpired))
	}
	found, err := h.s.Expired(ctx, time.UnixMilli(req.Msg.GetNowUnixMs()), int(req.Msg.GetLimit()))
	out := &productsv1.ExpiredResponse{Reservations: make([]*productsv1.Reservation, len(found))}
	for i, r := range found {
		out.Reservations[i] = reservationToWire(r)
	}
	return rpc.Reply(ctx, out, err)
}

func (h handler) Restock(ctx context.Context, req *connect.Request[productsv1.RestockRequest]) (*connect.Response[productsv1.RestockResponse], error) {
	lines := linesFromWire(req.Msg.GetLines())
	var problems []string
	if p := products.CallIDProblem(req.Msg.GetId()); p != "" {
		problems = append(problems, "id: "+p)
	}
	if problems = append(problems, products.LinesProblems(lines, 0, products.MaxRestockLines)...); problems != nil {
		return refuse[productsv1.RestockResponse](ctx, problems...)
	}
	err := h.s.Restock(ctx, req.Msg.GetId(), lines)
	return rpc.Reply(ctx, &productsv1.RestockResponse{}, err)
}

// Client is the products module at a URL: a products.Store whose every
// call is one Connect call.
type Client struct {
	c       productsv1connect.ProductServiceClient
	http    *http.Client
	baseURL string
}

var _ products.Store = (*Client)(nil)

// NewClient returns a client of the products module at baseURL
// (http://host:port), calling it with httpClient and opts (see
// rpc.ClientOptions), its calls held to Limits.
func NewClient(httpClient *http.Client, baseURL string, opts ...connect.ClientOption) *Client {
	opts = append(rpc.LimitOptions(Limits), opts...)
	return &Client{c: productsv1connect.NewProductServiceClient(httpClient, baseURL, opts...), http: httpClient, baseURL: baseURL}
}

// Ready reports whether the products module is ready (its /readyz).
func (c *Client) Ready(ctx context.Context) error {
	return rpc.Ready(ctx, c.http, c.baseURL, products.ErrUnavailable)
}

// Close closes the client's idle connections to the products module.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func fail(err error) error { return rpc.ClientError(err, products.ErrUnavailable) }

// Get implements products.Store.
func (c *Client) Get(ctx context.Context, id string) (products.Product, error) {
	resp, err := c.c.Get(ctx, connect.NewRequest(&productsv1.GetRequest{Id: id}))
	if err != nil {
		return products.Product{}, fail(err)
	}
	return fromWire(resp.Msg.GetProduct()), nil
}

// GetMany implements products.Store: one call for up to products.MaxPage
// ids (an order placed through the API names at most 100), one per
// MaxPage ids beyond.
func (c *Client) GetMany(ctx context.Context, ids []string) (map[string]products.Product, error) {
	out := make(map[string]products.Product, len(ids))
	for len(ids) > 0 {
		batch := ids[:min(len(ids), products.MaxPage)]
		ids = ids[len(batch):]
		resp, err := c.c.GetMany(ctx, connect.NewRequest(&productsv1.GetManyRequest{Ids: batch}))
		if err != nil {
			return nil, fail(err)
		}
		for _, p := range resp.Msg.GetProducts() {
			out[p.GetId()] = fromWire(p)
		}
	}
	return out, nil
}

// Exists implements products.Store.
func (c *Client) Exists(ctx context.Context, id string) (bool, error) {
	resp, err := c.c.Exists(ctx, connect.NewRequest(&productsv1.ExistsRequest{Id: id}))
	if err != nil {
		return false, fail(err)
	}
	return resp.Msg.GetExists(), nil
}

// Create implements products.Store.
func (c *Client) Create(ctx context.Context, p products.Product) error {
	_, err := c.c.Create(ctx, connect.NewRequest(&productsv1.CreateRequest{Product: toWire(p)}))
	return fail(err)
}

// Update implements products.Store.
func (c *Client) Update(ctx context.Context, id string, patch products.Patch) (products.Product, error) {
	resp, err := c.c.Update(ctx, connect.NewRequest(&productsv1.UpdateRequest{
		Id: id, Title: patch.Title, PassengerCapacity: patch.PassengerCapacity, MaximumSpeed: patch.MaximumSpeed, InStock: patch.InStock,
	}))
	if err != nil {
		return products.Product{}, fail(err)
	}
	return fromWire(resp.Msg.GetProduct()), nil
}

// Delete implements products.Store.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, err := c.c.Delete(ctx, connect.NewRequest(&productsv1.DeleteRequest{Id: id}))
	return fail(err)
}

// List implements products.Store.
func (c *Client) List(ctx context.Context, cursor string, limit int) (products.Page, error) {
	resp, err := c.c.List(ctx, connect.NewRequest(&productsv1.ListRequest{Cursor: cursor, Limit: int32(min(limit, 1<<30))}))
	if err != nil {
		return products.Page{}, fail(err)
	}
	page := products.Page{Next: resp.Msg.GetNext(), Products: make([]products.Product, len(resp.Msg.GetProducts()))}
	for i, p := range resp.Msg.GetProducts() {
		page.Products[i] = fromWire(p)
	}
	return page, nil
}

// Reserve implements products.Store: the whole reservation in one call.
func (c *Client) Reserve(ctx context.Context, r products.Reservation) (products.Taken, error) {
	resp, err := c.c.Reserve(ctx, connect.NewRequest(&productsv1.ReserveRequest{Reservation: reservationToWire(r)}))
	if err != nil {
		return nil, fail(err)
	}
	taken := products.Taken(resp.Msg.GetTaken())
	if taken == nil {
		taken = products.Taken{}
	}
	return taken, nil
}

// Commit implements products.Store.
func (c *Client) Commit(ctx context.Context, r products.Reservation) error {
	_, err := c.c.Commit(ctx, connect.NewRequest(&productsv1.CommitRequest{Reservation: reservationToWire(r)}))
	return fail(err)
}

// Release implements products.Store.
func (c *Client) Release(ctx context.Context, r products.Reservation) error {
	_, err := c.c.Release(ctx, connect.NewRequest(&productsv1.ReleaseRequest{Reservation: reservationToWire(r)}))
	return fail(err)
}

// Expired implements products.Store.
func (c *Client) Expired(ctx context.Context, now time.Time, limit int) ([]products.Reservation, error) {
	resp, err := c.c.Expired(ctx, connect.NewRequest(&productsv1.ExpiredRequest{NowUnixMs: now.UnixMilli(), Limit: int32(min(limit, 1<<30))}))
	if err != nil {
		return nil, fail(err)
	}
	var out []products.Reservation
	for _, r := range resp.Msg.GetReservations() {
		out = append(out, reservationFromWire(r))
	}
	return out, nil
}

// Restock implements products.Store.
func (c *Client) Restock(ctx context.Context, id string, lines []products.Line) error {
	_, err := c.c.Restock(ctx, connect.NewRequest(&productsv1.RestockRequest{Id: id, Lines: linesToWire(lines)}))
	return fail(err)
}

func toWire(p products.Product) *productsv1.Product {
	return &productsv1.Product{Id: p.ID, Title: p.Title, PassengerCapacity: p.PassengerCapacity,
		MaximumSpeed: p.MaximumSpeed, InStock: p.InStock, Incarnation: p.Incarnation}
}

func fromWire(p *productsv1.Product) products.Product {
	return products.Product{ID: p.GetId(), Title: p.GetTitle(), PassengerCapacity: p.GetPassengerCapacity(),
		MaximumSpeed: p.GetMaximumSpeed(), InStock: p.GetInStock(), Incarnation: p.GetIncarnation()}
}

func linesToWire(lines []products.Line) []*productsv1.Line {
	out := make([]*productsv1.Line, len(lines))
	for i, l := range lines {
		out[i] = &productsv1.Line{ProductId: l.ProductID, Quantity: l.Quantity, Incarnation: l.Incarnation}
	}
	return out
}

func linesFromWire(lines []*productsv1.Line) []products.Line {
	out := make([]products.Line, len(lines))
	for i, l := range lines {
		out[i] = products.Line{ProductID: l.GetProductId(), Quantity: l.GetQuantity(), Incarnation: l.GetIncarnation()}
	}
	return out
}

func reservationToWire(r products.Reservation) *productsv1.Reservation {
	var deadline int64
	if !r.Deadline.IsZero() {
		deadline = r.Deadline.UnixMilli()
	}
	return &productsv1.Reservation{Id: r.ID, Lines: linesToWire(r.Lines), DeadlineUnixMs: deadline}
}

func reservationFromWire(r *productsv1.Reservation) products.Reservation {
	out := products.Reservation{ID: r.GetId(), Lines: linesFromWire(r.GetLines())}
	if r.GetDeadlineUnixMs() != 0 {
		out.Deadline = time.UnixMilli(r.GetDeadlineUnixMs())
	}
	return out
}
