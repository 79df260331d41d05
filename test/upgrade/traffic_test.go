//go:build upgrade

package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// target is one URL the API is served on: a process of one release, or a
// gateway in front of modules.
type target struct {
	Name    string // "A1", "G-cur→prev"
	Release string // which release answers there, for messages: "prev 1.0.0 (9f98364)"
	Side    string // "prev" or "cur": idempotency replays go to the other side
	URL     string
	Events  bool // order changes made through it write events

	ops atomic.Int64 // requests sent to it
}

func (tg *target) String() string { return tg.Name + " (" + tg.Release + ")" }

// The model: what the clients were told. Every check compares the stores,
// as each release reads them, with it.
type product struct {
	ID, Title       string
	Capacity, Speed int
	Initial         int // in_stock when created
	By              string
	Throwaway       bool // created to be deleted; never ordered
	Deleted         bool
}

type line struct {
	ID        int64 // the line's id, once read
	ProductID string
	Price     string
	Quantity  int
}

type order struct {
	ID      int64
	Lines   []line
	By      string
	Key     string // the Idempotency-Key it was placed with; such orders are never changed
	Body    []byte // the body it was placed with
	Owner   int    // the worker that changes it (plain orders)
	Side    string // the side of the target it was placed on
	Deleted bool
	Events  []event // the events its changes must produce, in order
}

type event struct {
	Type  string // order_created, order_updated, order_deleted
	Lines []line // product, price and quantity of each line
}

// problem is one answer or state that breaks the rule.
type problem struct{ phase, kind, detail string }

// traffic drives a mix of requests at the current targets from a few
// workers, and keeps the model.
type traffic struct {
	t      *testing.T
	client *http.Client
	runID  string
	seed   uint64

	mu       sync.Mutex
	cond     *sync.Cond
	paused   bool
	active   int
	stopped  bool
	targets  []*target
	phase    string
	products map[string]*product
	stock    []string // ids of products orders may use
	orders   map[int64]*order
	nextID   int
	problems []problem

	wg sync.WaitGroup
}

const workers = 4

func newTraffic(t *testing.T) *traffic {
	seed := rand.Uint64()
	tr := &traffic{
		t:        t,
		client:   &http.Client{Timeout: 30 * time.Second},
		runID:    fmt.Sprintf("%06x", seed&0xffffff),
		seed:     seed,
		paused:   true,
		products: map[string]*product{},
		orders:   map[int64]*order{},
	}
	tr.cond = sync.NewCond(&tr.mu)
	t.Logf("traffic seed %d", seed)
	for w := range workers {
		tr.wg.Add(1)
		go tr.worker(w, rand.New(rand.NewPCG(seed, uint64(w))))
	}
	t.Cleanup(tr.stop)
	return tr
}

// stop ends the workers.
func (tr *traffic) stop() {
	tr.mu.Lock()
	tr.stopped = true
	tr.cond.Broadcast()
	tr.mu.Unlock()
	tr.wg.Wait()
}

// pause waits until no request is in flight and keeps the workers idle.
func (tr *traffic) pause() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.paused = true
	for tr.active > 0 {
		tr.cond.Wait()
	}
}

// serve sets the targets traffic goes to (after draining the previous
// ones, as a load balancer drops a pod before it is stopped) and names the
// phase that follows.
func (tr *traffic) serve(phase string, targets ...*target) {
	tr.pause()
	tr.mu.Lock()
	tr.targets, tr.phase, tr.paused = targets, phase, false
	tr.cond.Broadcast()
	tr.mu.Unlock()
	names := make([]string, len(targets))
	for i, tg := range targets {
		names[i] = tg.String()
	}
	tr.t.Logf("phase %q: traffic on %s", phase, strings.Join(names, ", "))
}

// run lets traffic go until every current target has had n more requests.
func (tr *traffic) run(n int64) {
	tr.mu.Lock()
	targets := slices.Clone(tr.targets)
	tr.mu.Unlock()
	want := make([]int64, len(targets))
	for i, tg := range targets {
		want[i] = tg.ops.Load() + n
	}
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < len(targets); {
		if targets[i].ops.Load() >= want[i] {
			i++
			continue
		}
		if time.Now().After(deadline) {
			tr.t.Fatalf("phase %q: %s got %d of %d requests in 5 minutes", tr.phase, targets[i], targets[i].ops.Load()-want[i]+n, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tr *traffic) worker(w int, rnd *rand.Rand) {
	defer tr.wg.Done()
	for i := 0; ; i++ {
		tr.mu.Lock()
		for tr.paused && !tr.stopped {
			tr.cond.Wait()
		}
		if tr.stopped {
			tr.mu.Unlock()
			return
		}
		tr.active++
		tg := tr.targets[(w+i)%len(tr.targets)]
		tr.mu.Unlock()

		tr.step(w, rnd, tg)
		tg.ops.Add(1)

		tr.mu.Lock()
		tr.active--
		tr.cond.Broadcast()
		tr.mu.Unlock()
	}
}

// step sends one operation of the mix.
func (tr *traffic) step(w int, rnd *rand.Rand, tg *target) {
	ops := []struct {
		weight int
		do     func(int, *rand.Rand, *target)
	}{
		{3, tr.createProduct},
		{3, tr.getProduct},
		{3, tr.placeKeyed},
		{3, tr.placePlain},
		{2, tr.getOrder},
		{2, tr.putOrder},
		{1, tr.deleteOrder},
		{1, tr.deleteProduct},
		{1, tr.recreateProduct},
		{1, tr.listPage},
	}
	total := 0
	for _, op := range ops {
		total += op.weight
	}
	n := rnd.IntN(total)
	for _, op := range ops {
		if n < op.weight {
			op.do(w, rnd, tg)
			return
		}
		n -= op.weight
	}
}

// other returns a target of the other side than tg if there is one,
// else another target, else tg.
func (tr *traffic) other(tg *target) *target {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, o := range tr.targets {
		if o.Side != tg.Side {
			return o
		}
	}
	for _, o := range tr.targets {
		if o != tg {
			return o
		}
	}
	return tg
}

func (tr *traffic) report(kind, format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.problems = append(tr.problems, problem{tr.phase, kind, fmt.Sprintf(format, args...)})
}

// response is one answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends one request and checks its status: a transport error is a lost
// request, a 5xx a server error, anything but want a wrong answer; each is
// reported, and ok is false.
func (tr *traffic) do(tg *target, method, path string, body []byte, header map[string]string, want int) (response, bool) {
	return tr.doURL(tg, method, tg.URL+path, body, header, want)
}

func (tr *traffic) doURL(tg *target, method, u string, body []byte, header map[string]string, want int) (response, bool) {
	req, err := http.NewRequestWithContext(tr.t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		tr.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	what := method + " " + strings.TrimPrefix(u, tg.URL)
	if k := header["Idempotency-Key"]; k != "" {
		what += " (Idempotency-Key " + k + ")"
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		if tr.t.Context().Err() == nil {
			tr.report("lost request", "%s on %s: %v", what, tg, err)
		}
		return response{}, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tr.report("lost request", "%s on %s: reading the answer: %v", what, tg, err)
		return response{}, false
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	switch {
	case r.Status >= 500:
		tr.report("5xx", "%s on %s → %d %s", what, tg, r.Status, short(b))
		return r, false
	case r.Status != want:
		tr.report("wrong answer", "%s on %s → %d %s, want %d", what, tg, r.Status, short(b), want)
		return r, false
	}
	return r, true
}

func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (tr *traffic) decode(tg *target, what string, b []byte, v any) bool {
	if err := json.Unmarshal(b, v); err != nil {
		tr.report("wrong answer", "%s on %s: %v: %s", what, tg, err, short(b))
		return false
	}
	return true
}

// ---- products ----

func (tr *traffic) newProduct(rnd *rand.Rand, tg *target, throwaway bool) (*product, bool) {
	tr.mu.Lock()
	tr.nextID++
	p := &product{
		ID:        fmt.Sprintf("up-%s-%d", tr.runID, tr.nextID),
		Title:     fmt.Sprintf("Airship %d of run %s", tr.nextID, tr.runID),
		Capacity:  rnd.IntN(500),
		Speed:     rnd.IntN(100),
		Initial:   100000,
		By:        tg.String(),
		Throwaway: throwaway,
	}
	tr.mu.Unlock()
	if throwaway {
		p.Initial = 5
	}
	body, _ := json.Marshal(map[string]any{
		"id": p.ID, "title": p.Title, "passenger_capacity": p.Capacity, "maximum_speed": p.Speed, "in_stock": p.Initial,
	})
	r, ok := tr.do(tg, http.MethodPost, "/products", body, nil, http.StatusOK)
	if !ok {
		return nil, false
	}
	var got struct{ ID string }
	if !tr.decode(tg, "POST /products", r.Body, &got) {
		return nil, false
	}
	if got.ID != p.ID {
		tr.report("wrong answer", "POST /products on %s answered id %q, want %q", tg, got.ID, p.ID)
	}
	tr.mu.Lock()
	tr.products[p.ID] = p
	if !throwaway {
		tr.stock = append(tr.stock, p.ID)
	}
	tr.mu.Unlock()
	return p, true
}

func (tr *traffic) createProduct(_ int, rnd *rand.Rand, tg *target) { tr.newProduct(rnd, tg, false) }

type productDoc struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Capacity int    `json:"passenger_capacity"`
	Speed    int    `json:"maximum_speed"`
	InStock  int    `json:"in_stock"`
}

// checkProduct compares a product document with the model (not its stock,
// which orders move).
func (tr *traffic) checkProduct(tg *target, what string, d productDoc, p *product) {
	if d.ID != p.ID || d.Title != p.Title || d.Capacity != p.Capacity || d.Speed != p.Speed {
		tr.report("wrong answer", "%s on %s: %+v, want the product created on %s: %+v", what, tg, d, p.By, *p)
	}
}

func (tr *traffic) getProduct(_ int, rnd *rand.Rand, tg *target) {
	tr.mu.Lock()
	if len(tr.stock) == 0 {
		tr.mu.Unlock()
		return
	}
	p := tr.products[tr.stock[rnd.IntN(len(tr.stock))]]
	tr.mu.Unlock()
	r, ok := tr.do(tg, http.MethodGet, "/products/"+p.ID, nil, nil, http.StatusOK)
	var d productDoc
	if ok && tr.decode(tg, "GET /products/"+p.ID, r.Body, &d) {
		tr.checkProduct(tg, "GET /products/"+p.ID, d, p)
	}
}

// deleteProduct creates a product on one side and deletes it on the
// other, then reads it back as gone on the first.
func (tr *traffic) deleteProduct(_ int, rnd *rand.Rand, tg *target) {
	p, ok := tr.newProduct(rnd, tg, true)
	if !ok {
		return
	}
	other := tr.other(tg)
	if _, ok := tr.do(other, http.MethodDelete, "/products/"+p.ID, nil, nil, http.StatusNoContent); !ok {
		return
	}
	tr.mu.Lock()
	p.Deleted = true
	tr.mu.Unlock()
	tr.do(tg, http.MethodGet, "/products/"+p.ID, nil, nil, http.StatusNotFound)
}

// recreateProduct checks that stock goes back only to the incarnation it
// came from, across releases: a product ordered from, deleted and created
// again under the same id does not get the old order's stock when the
// order is deleted. The steps alternate between the sides.
func (tr *traffic) recreateProduct(_ int, rnd *rand.Rand, tg *target) {
	other := tr.other(tg)
	p, ok := tr.newProduct(rnd, tg, true)
	if !ok {
		return
	}
	lines := []line{{ProductID: p.ID, Price: "10.00", Quantity: 2}}
	body := placeBody(lines)
	r, ok := tr.do(other, http.MethodPost, "/orders", body, nil, http.StatusOK)
	var placed struct{ ID int64 }
	if !ok || !tr.decode(other, "POST /orders", r.Body, &placed) {
		return
	}
	o := &order{ID: placed.ID, Lines: lines, By: other.String(), Body: body, Owner: -1, Side: other.Side}
	if other.Events {
		o.Events = append(o.Events, event{"order_created", lines})
	}
	tr.mu.Lock()
	tr.orders[o.ID] = o
	tr.mu.Unlock()
	if _, ok := tr.do(tg, http.MethodDelete, "/products/"+p.ID, nil, nil, http.StatusNoContent); !ok {
		return
	}
	again, _ := json.Marshal(map[string]any{
		"id": p.ID, "title": p.Title, "passenger_capacity": p.Capacity, "maximum_speed": p.Speed, "in_stock": p.Initial,
	})
	if _, ok := tr.do(other, http.MethodPost, "/products", again, nil, http.StatusOK); !ok {
		return
	}
	if _, ok := tr.do(tg, http.MethodDelete, fmt.Sprintf("/orders/%d", placed.ID), nil, nil, http.StatusNoContent); !ok {
		return
	}
	tr.mu.Lock()
	o.Deleted = true
	if tg.Events {
		o.Events = append(o.Events, event{"order_deleted", lines})
	}
	tr.mu.Unlock()
	r, ok = tr.do(other, http.MethodGet, "/products/"+p.ID, nil, nil, http.StatusOK)
	var d productDoc
	if ok && tr.decode(other, "GET /products/"+p.ID, r.Body, &d) && d.InStock != p.Initial {
		tr.report("incarnation", "product %s created on %s, ordered from (2) on %s, deleted and created again (stock %d): "+
			"deleting the old order on %s gave the new product stock, in_stock %d", p.ID, tg, other, p.Initial, tg, d.InStock)
	}
	if _, ok := tr.do(tg, http.MethodDelete, "/products/"+p.ID, nil, nil, http.StatusNoContent); ok {
		tr.mu.Lock()
		p.Deleted = true
		tr.mu.Unlock()
	}
}

func (tr *traffic) listPage(_ int, rnd *rand.Rand, tg *target) {
	path := "/products?limit=20"
	if rnd.IntN(2) == 0 {
		path = "/orders?limit=20"
	}
	r, ok := tr.do(tg, http.MethodGet, path, nil, nil, http.StatusOK)
	var items []json.RawMessage
	if ok {
		tr.decode(tg, "GET "+path, r.Body, &items)
	}
}

// ---- orders ----

// orderLines picks one or two products and quantities.
func (tr *traffic) orderLines(rnd *rand.Rand) []line {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.stock) == 0 {
		return nil
	}
	n := 1 + rnd.IntN(2)
	seen := map[string]bool{}
	var lines []line
	for range n {
		id := tr.stock[rnd.IntN(len(tr.stock))]
		if seen[id] {
			continue
		}
		seen[id] = true
		lines = append(lines, line{ProductID: id, Price: fmt.Sprintf("%d.%02d", 1+rnd.IntN(99999), rnd.IntN(100)), Quantity: 1 + rnd.IntN(3)})
	}
	return lines
}

func placeBody(lines []line) []byte {
	details := make([]map[string]any, len(lines))
	for i, l := range lines {
		details[i] = map[string]any{"product_id": l.ProductID, "price": l.Price, "quantity": l.Quantity}
	}
	b, _ := json.Marshal(map[string]any{"order_details": details})
	return b
}

// place posts an order and records it.
func (tr *traffic) place(w int, rnd *rand.Rand, tg *target, keyed bool) {
	lines := tr.orderLines(rnd)
	if lines == nil {
		tr.newProduct(rnd, tg, false)
		return
	}
	body := placeBody(lines)
	var header map[string]string
	key := ""
	if keyed {
		key = fmt.Sprintf("up-%s-%d-%d", tr.runID, w, rnd.Uint32())
		header = map[string]string{"Idempotency-Key": key}
	}
	r, ok := tr.do(tg, http.MethodPost, "/orders", body, header, http.StatusOK)
	if !ok {
		return
	}
	var got struct{ ID int64 }
	if !tr.decode(tg, "POST /orders", r.Body, &got) || got.ID <= 0 {
		return
	}
	o := &order{ID: got.ID, Lines: lines, By: tg.String(), Key: key, Body: body, Owner: w, Side: tg.Side}
	if tg.Events {
		o.Events = append(o.Events, event{"order_created", slices.Clone(lines)})
	}
	tr.mu.Lock()
	if prev, dup := tr.orders[got.ID]; dup {
		tr.mu.Unlock()
		tr.report("wrong answer", "POST /orders on %s answered order %d, already placed on %s", tg, got.ID, prev.By)
		return
	}
	tr.orders[got.ID] = o
	tr.mu.Unlock()
	if keyed {
		// The same key and body on the other release replays the order.
		tr.replay(tr.other(tg), o)
	}
}

func (tr *traffic) placeKeyed(w int, rnd *rand.Rand, tg *target) { tr.place(w, rnd, tg, true) }
func (tr *traffic) placePlain(w int, rnd *rand.Rand, tg *target) { tr.place(w, rnd, tg, false) }

// replay sends a keyed order's key and body again: the answer must be the
// same order.
func (tr *traffic) replay(tg *target, o *order) {
	r, ok := tr.do(tg, http.MethodPost, "/orders", o.Body, map[string]string{"Idempotency-Key": o.Key}, http.StatusOK)
	if !ok {
		return
	}
	var got struct{ ID int64 }
	if tr.decode(tg, "POST /orders (replay)", r.Body, &got) && got.ID != o.ID {
		tr.report("idempotency", "Idempotency-Key %s placed order %d on %s; the same key and body on %s answered order %d",
			o.Key, o.ID, o.By, tg, got.ID)
	}
}

type orderDoc struct {
	ID      int64 `json:"id"`
	Details []struct {
		ID        int64  `json:"id"`
		ProductID string `json:"product_id"`
		Price     string `json:"price"`
		Quantity  int    `json:"quantity"`
	} `json:"order_details"`
}

func (d orderDoc) lines() []line {
	out := make([]line, len(d.Details))
	for i, l := range d.Details {
		out[i] = line{ID: l.ID, ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity}
	}
	return out
}

// sameLines compares lines by product, price and quantity, in any order.
func sameLines(a, b []line) bool {
	key := func(ls []line) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = fmt.Sprintf("%s %s %d", l.ProductID, l.Price, l.Quantity)
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func linesString(ls []line) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%d×%s@%s", l.Quantity, l.ProductID, l.Price)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// readOrder reads an order and compares it with the model; it records the
// lines' ids.
func (tr *traffic) readOrder(tg *target, o *order) (orderDoc, bool) {
	path := fmt.Sprintf("/orders/%d", o.ID)
	r, ok := tr.do(tg, http.MethodGet, path, nil, nil, http.StatusOK)
	var d orderDoc
	if !ok || !tr.decode(tg, "GET "+path, r.Body, &d) {
		return d, false
	}
	tr.mu.Lock()
	want := slices.Clone(o.Lines)
	tr.mu.Unlock()
	if d.ID != o.ID || !sameLines(d.lines(), want) {
		tr.report("wrong answer", "GET %s on %s: order %d %s, want %s (placed on %s)", path, tg, d.ID, linesString(d.lines()), linesString(want), o.By)
		return d, false
	}
	tr.mu.Lock()
	o.Lines = d.lines()
	tr.mu.Unlock()
	return d, true
}

// ownOrder picks a live plain order of worker w, or any live keyed order
// when reading.
func (tr *traffic) pickOrder(w int, rnd *rand.Rand, forChange bool) *order {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var c []*order
	for _, o := range tr.orders {
		if o.Deleted {
			continue
		}
		if (o.Key == "" && o.Owner == w) || (!forChange && o.Key != "") {
			c = append(c, o)
		}
	}
	if len(c) == 0 {
		return nil
	}
	slices.SortFunc(c, func(a, b *order) int { return int(a.ID - b.ID) })
	return c[rnd.IntN(len(c))]
}

func (tr *traffic) getOrder(w int, rnd *rand.Rand, tg *target) {
	if o := tr.pickOrder(w, rnd, false); o != nil {
		tr.readOrder(tg, o)
	}
}

// putOrder reads one of the worker's orders on one side and changes every
// line's price and quantity on the other.
func (tr *traffic) putOrder(w int, rnd *rand.Rand, tg *target) {
	o := tr.pickOrder(w, rnd, true)
	if o == nil {
		return
	}
	if _, ok := tr.readOrder(tr.other(tg), o); !ok {
		return
	}
	tr.mu.Lock()
	next := slices.Clone(o.Lines)
	tr.mu.Unlock()
	details := make([]map[string]any, len(next))
	for i := range next {
		next[i].Quantity = 1 + rnd.IntN(3)
		next[i].Price = fmt.Sprintf("%d.%02d", 1+rnd.IntN(99999), rnd.IntN(100))
		details[i] = map[string]any{"id": next[i].ID, "price": next[i].Price, "quantity": next[i].Quantity}
	}
	body, _ := json.Marshal(map[string]any{"order_details": details})
	path := fmt.Sprintf("/orders/%d", o.ID)
	r, ok := tr.do(tg, http.MethodPut, path, body, nil, http.StatusOK)
	if !ok {
		return
	}
	var d orderDoc
	if !tr.decode(tg, "PUT "+path, r.Body, &d) {
		return
	}
	if !sameLines(d.lines(), next) {
		tr.report("wrong answer", "PUT %s on %s answered %s, want %s", path, tg, linesString(d.lines()), linesString(next))
	}
	tr.mu.Lock()
	// A PUT that changes nothing may write no event.
	changed := !sameLines(o.Lines, next)
	o.Lines = next
	if tg.Events && changed {
		o.Events = append(o.Events, event{"order_updated", slices.Clone(next)})
	}
	tr.mu.Unlock()
}

// deleteOrder deletes one of the worker's orders on one side and reads it
// back as gone on the other.
func (tr *traffic) deleteOrder(w int, rnd *rand.Rand, tg *target) {
	o := tr.pickOrder(w, rnd, true)
	if o == nil {
		return
	}
	path := fmt.Sprintf("/orders/%d", o.ID)
	if _, ok := tr.do(tg, http.MethodDelete, path, nil, nil, http.StatusNoContent); !ok {
		return
	}
	tr.mu.Lock()
	o.Deleted = true
	if tg.Events {
		o.Events = append(o.Events, event{"order_deleted", slices.Clone(o.Lines)})
	}
	tr.mu.Unlock()
	tr.do(tr.other(tg), http.MethodGet, path, nil, nil, http.StatusNotFound)
}

// ---- checks, with the traffic paused ----

var nextLinkRe = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// walk follows a listing's Link headers to its end.
func (tr *traffic) walk(tg *target, path string, each func(json.RawMessage)) bool {
	u := tg.URL + path
	for pages := 0; ; pages++ {
		if pages > 10000 {
			tr.report("listing", "GET %s on %s: more than 10000 pages", path, tg)
			return false
		}
		r, ok := tr.doURL(tg, http.MethodGet, u, nil, nil, http.StatusOK)
		var items []json.RawMessage
		if !ok || !tr.decode(tg, "GET "+path, r.Body, &items) {
			return false
		}
		for _, it := range items {
			each(it)
		}
		m := nextLinkRe.FindStringSubmatch(r.Header.Get("Link"))
		if m == nil {
			return true
		}
		next, err := url.Parse(m[1])
		if err != nil {
			tr.report("listing", "GET %s on %s: Link %q: %v", path, tg, m[1], err)
			return false
		}
		base, _ := url.Parse(tg.URL)
		u = base.ResolveReference(next).String()
	}
}

// point sets the targets without letting traffic go: for a check before
// any request reaches them.
func (tr *traffic) point(phase string, targets ...*target) {
	tr.pause()
	tr.mu.Lock()
	tr.targets, tr.phase = targets, phase
	tr.mu.Unlock()
}

// check pauses the traffic and compares what every current target reads
// with the model: the product listing, every order and the order listing,
// the stock ledger, and every Idempotency-Key. Traffic then goes on if it
// was going.
func (tr *traffic) check(name string) { tr.verify(name, true) }

// checkLoaded is check for a store loaded from a dump, which carries
// products and orders but no Idempotency-Keys.
func (tr *traffic) checkLoaded(name string) { tr.verify(name, false) }

func (tr *traffic) verify(name string, keys bool) {
	tr.mu.Lock()
	wasPaused := tr.paused
	tr.mu.Unlock()
	tr.pause()
	defer func() {
		tr.mu.Lock()
		tr.paused = wasPaused
		tr.cond.Broadcast()
		tr.mu.Unlock()
	}()
	tr.mu.Lock()
	targets := slices.Clone(tr.targets)
	phase := tr.phase
	tr.phase = name
	tr.mu.Unlock()
	defer func() { tr.mu.Lock(); tr.phase = phase; tr.mu.Unlock() }()

	// Orders, by id, for reading each back on one target and replaying
	// each key on a target of the other side, the targets taking turns.
	var ids []int64
	for id := range tr.orders {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var stock, units map[string]int // as the first target lists them
	for ti, tg := range targets {
		// Every product created on either release, and no other, is
		// listed by each, as it was created.
		listed := map[string]productDoc{}
		if !tr.walk(tg, "/products?limit=37", func(raw json.RawMessage) {
			var d productDoc
			if tr.decode(tg, "GET /products", raw, &d) {
				if _, dup := listed[d.ID]; dup {
					tr.report("listing", "GET /products on %s lists %s twice", tg, d.ID)
				}
				listed[d.ID] = d
			}
		}) {
			continue
		}
		var missing, extra []string
		for _, id := range sortedKeys(tr.products) {
			p := tr.products[id]
			d, ok := listed[id]
			switch {
			case !p.Deleted && !ok:
				missing = append(missing, id+" (created on "+p.By+")")
			case p.Deleted && ok:
				extra = append(extra, id+" (deleted)")
			case ok:
				tr.checkProduct(tg, "GET /products", d, p)
			}
		}
		for id := range listed {
			if tr.products[id] == nil {
				extra = append(extra, id+" (never created)")
			}
		}
		if len(missing) > 0 {
			tr.report("listing", "GET /products on %s misses %d of %d products: %s", tg, len(missing), tr.liveProducts(), clip(missing))
		}
		if len(extra) > 0 {
			tr.report("listing", "GET /products on %s lists %d products that do not exist: %s", tg, len(extra), clip(extra))
		}
		levels := map[string]int{}
		for id, d := range listed {
			levels[id] = d.InStock
		}
		if stock == nil {
			stock = levels
		} else {
			for id, n := range levels {
				if m, ok := stock[id]; ok && m != n {
					tr.report("listing", "product %s: in_stock %d on %s, %d on %s", id, n, tg, m, targets[0])
				}
			}
		}

		// Every order placed on either release, and no other, is listed by
		// each with its lines, and reads back whole.
		seen := map[int64]bool{}
		ordered := map[string]int{}
		listedAll := tr.walk(tg, "/orders?limit=50", func(raw json.RawMessage) {
			var d orderDoc
			if !tr.decode(tg, "GET /orders", raw, &d) {
				return
			}
			seen[d.ID] = true
			for _, l := range d.Details {
				ordered[l.ProductID] += l.Quantity
			}
			o := tr.orders[d.ID]
			switch {
			case o == nil:
				tr.report("orders", "GET /orders on %s lists order %d %s, which no client was told was placed", tg, d.ID, linesString(d.lines()))
			case o.Deleted:
				tr.report("orders", "GET /orders on %s lists order %d, deleted", tg, d.ID)
			case !sameLines(d.lines(), o.Lines):
				tr.report("orders", "GET /orders on %s: order %d %s, want %s", tg, d.ID, linesString(d.lines()), linesString(o.Lines))
			}
		})
		if units == nil && listedAll {
			units = ordered
		}
		for i, id := range ids {
			o := tr.orders[id]
			if !o.Deleted && !seen[id] {
				tr.report("orders", "GET /orders on %s misses order %d, placed on %s", tg, id, o.By)
			}
			if !o.Deleted && i%len(targets) == ti {
				tr.readOrder(tg, o)
			}
		}
	}

	// Every Idempotency-Key replays its order, on a release other than the
	// one that placed it when there is one.
	for i, id := range ids {
		o := tr.orders[id]
		if !keys || o.Key == "" {
			continue
		}
		var others []*target
		for _, tg := range targets {
			if tg.Side != o.Side {
				others = append(others, tg)
			}
		}
		if len(others) == 0 {
			others = targets
		}
		tr.replay(others[i%len(others)], o)
	}

	// The stock ledger: for every product, stock now + units in the
	// orders the store lists = the stock it was created with. (Whether
	// those orders are the ones clients were told of is the orders check.)
	if stock != nil && units != nil {
		var broken []string
		for id, p := range tr.products {
			if p.Deleted {
				continue
			}
			if s, ok := stock[id]; ok && s+units[id] != p.Initial {
				broken = append(broken, fmt.Sprintf("%s: in_stock %d + %d in orders ≠ %d created (on %s)", id, s, units[id], p.Initial, p.By))
			}
		}
		sort.Strings(broken)
		if len(broken) > 0 {
			tr.report("ledger", "%d products break the stock ledger: %s", len(broken), clip(broken))
		}
	}
	tr.t.Logf("check %q: %d products, %d orders on %d targets", name, tr.liveProducts(), tr.liveOrders(), len(targets))
}

func (tr *traffic) liveProducts() int {
	n := 0
	for _, p := range tr.products {
		if !p.Deleted {
			n++
		}
	}
	return n
}

func (tr *traffic) liveOrders() int {
	n := 0
	for _, o := range tr.orders {
		if !o.Deleted {
			n++
		}
	}
	return n
}

func clip(items []string) string {
	const max = 5
	if len(items) > max {
		return strings.Join(items[:max], "; ") + fmt.Sprintf("; and %d more", len(items)-max)
	}
	return strings.Join(items, "; ")
}

// verdict fails the test with every problem found, grouped by phase and
// kind, a few examples each.
func (tr *traffic) verdict() {
	tr.pause()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	type group struct{ phase, kind string }
	var order []group
	byGroup := map[group][]string{}
	for _, p := range tr.problems {
		g := group{p.phase, p.kind}
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], p.detail)
	}
	for _, g := range order {
		ds := byGroup[g]
		var b strings.Builder
		fmt.Fprintf(&b, "phase %q: %d × %s", g.phase, len(ds), g.kind)
		for i, d := range ds {
			if i == 4 {
				fmt.Fprintf(&b, "\n    … and %d more", len(ds)-i)
				break
			}
			fmt.Fprintf(&b, "\n    %s", d)
		}
		tr.t.Error(b.String())
	}
	tr.problems = nil
}
