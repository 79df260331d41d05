// Package loadtest runs the API contract's load scenario against an
// airship (or any server speaking the contract) and reports latency per
// step: each virtual user loops, with no think time, through create
// product → get product → create order → get order → delete product →
// list orders. It talks to the API through the Go client (package
// client), each request sent once.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airshipltd/airship/client"
)

// The scenario's steps, in the order each iteration runs them.
const (
	StepCreateProduct = iota
	StepGetProduct
	StepCreateOrder
	StepGetOrder
	StepDeleteProduct
	StepListOrders
	numSteps
)

// StepNames names the steps in reports, indexed by Step* constants.
var StepNames = []string{
	"create product", "get product", "create order", "get order", "delete product", "list orders",
}

// Config describes a run.
type Config struct {
	// URL is the API's base URL, for example http://localhost:8000, or
	// several separated by commas (replicas of one API): user i then
	// sends its requests to the (i mod n)th.
	URL string
	// Users is the number of virtual users.
	Users int
	// RampUp is the time over which the users start, evenly spread; Hold
	// is how long all of them then keep going.
	RampUp, Hold time.Duration
	// Rows are the product templates; empty means DefaultRows().
	Rows []Row
	// Progress, if not nil, gets a progress line every second.
	Progress io.Writer
	// Client, if not nil, replaces the default tuned HTTP client under the
	// API client.
	Client *http.Client
}

// NewClient returns an HTTP client for users concurrent users: keep-alive
// with enough idle connections for every user, no compression, and a
// generous timeout per request.
func NewClient(users int) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * users,
		MaxIdleConnsPerHost:   2 * users,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// Run runs the scenario until ramp-up plus hold have passed or ctx ends,
// and returns the summary. Interrupting it (ctx ending) is not an error:
// the summary covers what ran.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Users < 1 {
		return Summary{}, errors.New("loadtest: users must be at least 1")
	}
	if cfg.RampUp < 0 || cfg.Hold < 0 || cfg.RampUp+cfg.Hold <= 0 {
		return Summary{}, errors.New("loadtest: ramp-up and hold must not be negative, and not both zero")
	}
	var bases []string
	for _, u := range strings.Split(cfg.URL, ",") {
		b := strings.TrimRight(strings.TrimSpace(u), "/")
		if !strings.HasPrefix(b, "http://") && !strings.HasPrefix(b, "https://") {
			return Summary{}, fmt.Errorf("loadtest: url %q must start with http:// or https://", u)
		}
		bases = append(bases, b)
	}
	base := strings.Join(bases, ",")
	rows := cfg.Rows
	if len(rows) == 0 {
		rows = DefaultRows()
	}
	hc := cfg.Client
	if hc == nil {
		hc = NewClient(cfg.Users)
		defer hc.CloseIdleConnections()
	}
	var err error

	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(cfg.RampUp+cfg.Hold))
	defer cancel()
	// When ctx ends (Ctrl-C), no step starts any more, but the requests in
	// flight get interruptGrace to finish: a create cut short could still
	// land on the server after the clean-up deleted its product.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	var grace *time.Timer
	var graceMu sync.Mutex
	stopGrace := context.AfterFunc(ctx, func() {
		graceMu.Lock()
		grace = time.AfterFunc(interruptGrace, cancelReqs)
		graceMu.Unlock()
	})
	defer func() {
		stopGrace()
		graceMu.Lock()
		if grace != nil {
			grace.Stop()
		}
		graceMu.Unlock()
	}()
	rec := newRecorder(start, numSteps)
	run := strconv.FormatInt(start.UnixNano()/1e6%(36*36*36*36*36*36), 36) // ids unique across runs

	// The scenario's requests are sent once each: a retry would hide the
	// failure the load test is there to count.
	apis := make([]*client.Client, len(bases))
	for i, b := range bases {
		if apis[i], err = client.New(b, client.WithHTTPClient(hc), client.WithRetry(client.NoRetry)); err != nil {
			return Summary{}, fmt.Errorf("loadtest: %w", err)
		}
	}
	var wg sync.WaitGroup
	for u := range cfg.Users {
		delay := time.Duration(int64(cfg.RampUp) * int64(u) / int64(cfg.Users))
		vu := &user{id: u, run: run, rows: rows, api: apis[u%len(apis)], rec: rec}
		wg.Go(func() {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(time.Until(start.Add(delay))):
			}
			vu.loop(reqCtx, runCtx)
		})
	}

	done := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.Progress != nil {
		pwg.Go(func() { progress(cfg.Progress, rec, start, cfg, done) })
	}
	wg.Wait()
	end := time.Now()
	close(done)
	pwg.Wait()

	s := rec.summary(end, StepNames)
	s.URL, s.Users, s.RampUp, s.Hold = base, cfg.Users, cfg.RampUp.String(), cfg.Hold.String()
	s.Interrupted = ctx.Err() != nil
	return s, nil
}

func progress(w io.Writer, rec *recorder, start time.Time, cfg Config, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	total := cfg.RampUp + cfg.Hold
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			reqs, errs, last := rec.progress(now)
			elapsed := now.Sub(start)
			active := cfg.Users
			if cfg.RampUp > 0 && elapsed < cfg.RampUp {
				active = min(cfg.Users, 1+int(int64(cfg.Users)*int64(elapsed)/int64(cfg.RampUp)))
			}
			fmt.Fprintf(w, "[%6s/%s] users %d  requests %d  errors %d  rps %d\n",
				elapsed.Truncate(time.Second), total, active, reqs, errs, last)
		}
	}
}

// interruptGrace is how long requests in flight may take to finish once
// a run is interrupted.
const interruptGrace = 5 * time.Second

// user is one virtual user.
type user struct {
	id   int
	run  string
	rows []Row
	api  *client.Client
	rec  *recorder
}

// loop runs iterations until stop ends. Requests run under ctx, so that
// those in flight when the run's time is up or it is interrupted finish
// and are recorded; ctx ends only interruptGrace after an interruption,
// cutting short (and not recording) what is still running then.
func (u *user) loop(ctx, stop context.Context) {
	for n := 0; stop.Err() == nil && ctx.Err() == nil; n++ {
		u.iteration(ctx, stop, n)
	}
}

// orderPrice is the price of every order line of the scenario.
var orderPrice = client.Price("100000.99")

// iteration runs the scenario once; no step starts after stop ends. A step
// whose result a later step needs ends the iteration when it fails. When
// the run ends between creating and deleting the product, the product is
// deleted anyway (unrecorded), so that a run leaves nothing behind.
func (u *user) iteration(ctx, stop context.Context, n int) {
	row := u.rows[(u.id+n)%len(u.rows)]
	id := ProductID(row.ID, u.run, u.id, n)
	deleted := false
	defer func() {
		if !deleted && (stop.Err() != nil || ctx.Err() != nil) {
			u.cleanup(ctx, id)
		}
	}()
	created := u.step(ctx, stop, StepCreateProduct, func() error {
		return u.api.CreateProduct(ctx, client.NewProduct{ID: id, Title: row.Title,
			PassengerCapacity: int32(row.PassengerCapacity), MaximumSpeed: int32(row.MaximumSpeed), InStock: int32(row.InStock)})
	})
	if !created {
		return
	}
	u.step(ctx, stop, StepGetProduct, func() error {
		_, err := u.api.GetProduct(ctx, id)
		return err
	})
	var order int64
	if u.step(ctx, stop, StepCreateOrder, func() (err error) {
		order, err = u.api.CreateOrder(ctx, "", client.NewOrderLine{ProductID: id, Price: orderPrice, Quantity: 1})
		return err
	}) {
		u.step(ctx, stop, StepGetOrder, func() error {
			_, err := u.api.GetOrder(ctx, order)
			return err
		})
	}
	deleted = u.step(ctx, stop, StepDeleteProduct, func() error { return u.api.DeleteProduct(ctx, id) })
	u.step(ctx, stop, StepListOrders, func() error {
		_, err := u.api.ListOrders(client.ListOrdersOptions{}).NextPage(ctx)
		return err
	})
}

// cleanup deletes a product the run may have left behind, without
// recording it; 404 is fine.
func (u *user) cleanup(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = u.api.DeleteProduct(ctx, id)
}

// step runs one request of the scenario with call, unless stop has
// ended, and records its outcome; it reports success. A request cut short
// because ctx ended is not recorded.
func (u *user) step(ctx, stop context.Context, step int, call func() error) bool {
	if stop.Err() != nil || ctx.Err() != nil {
		return false
	}
	begin := time.Now()
	err := call()
	end := time.Now()
	if err != nil && ctx.Err() != nil {
		return false
	}
	u.rec.record(step, end, end.Sub(begin), err)
	return err == nil
}

// WriteReports writes summary.json and latency.svg to dir, creating it,
// and returns their paths.
func WriteReports(dir string, s Summary) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	summary, err := WriteSummary(dir, s)
	if err != nil {
		return nil, err
	}
	chart, err := WriteChart(dir, s)
	if err != nil {
		return []string{summary}, err
	}
	return []string{summary, chart}, nil
}
