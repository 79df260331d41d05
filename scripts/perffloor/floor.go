package main

import (
	"context"
	"database/sql"
	_ "embed" // the Lua scripts
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
)

// config is what the floor runs on: airship's backends and the settings
// of airship that shape its answers and its backend work.
type config struct {
	postgresURL, redisURL, redisPrefix, imageRoot string
	hold                                          time.Duration
	postgresConns, redisPool                      int
}

// The Lua scripts are copies of airship's products/redisstore/lua/reserve.lua and
// release.lua (same text, so the same SHA1 that EVALSHA calls them by);
// the test checks that they still are.
var (
	//go:embed reserve.lua
	reserveLua    string
	reserveScript = redis.NewScript(reserveLua)
	//go:embed release.lua
	releaseLua    string
	releaseScript = redis.NewScript(releaseLua)
)

// The statements are airship's (orders/sqlstore/postgres.go, without the outbox
// event that airship writes only when events are on); the test checks
// that they still are.
const (
	insertOrder = `
WITH o AS (
    INSERT INTO orders DEFAULT VALUES RETURNING id
), claim AS (
    INSERT INTO stock_reservations (id, order_id) SELECT $1, id FROM o RETURNING id
), d AS (
    INSERT INTO order_details (order_id, product_id, price, quantity, product_incarnation)
    SELECT o.id, l.product_id, l.price, l.quantity, l.incarnation
    FROM o, unnest($2::text[], $3::numeric[], $4::int[], $5::text[])
        WITH ORDINALITY AS l(product_id, price, quantity, incarnation, n)
    ORDER BY l.n
    RETURNING id, product_id, price, quantity
)
SELECT (SELECT id FROM o), array_agg(d.id ORDER BY d.id),
    CASE WHEN (SELECT count(*) FROM o) = 1 AND count(*) = cardinality($2::text[]) AND (SELECT count(*) FROM claim) = 1
    THEN 0
    ELSE ('order not written whole: ' || (SELECT count(*) FROM o) || ' order rows, ' || count(*) || ' of ' ||
        cardinality($2::text[]) || ' lines, ' || (SELECT count(*) FROM claim) || ' claims')::int
    END
FROM d`

	selectOrder = `
SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM orders o JOIN order_details d ON d.order_id = o.id
WHERE o.id = $1
ORDER BY d.id`
)

// productFields are the fields of a product hash airship reads with one
// HMGET (products/redisstore/redisstore.go); the floor reads the same.
var productFields = []string{"title", "passenger_capacity", "maximum_speed", "in_stock", "inc"}

// floor serves the three routes on the backends.
type floor struct {
	cfg                     config
	db                      *sql.DB
	rdb                     *redis.Client
	insertStmt, selectStmt  *sql.Stmt
	reservations, imageRoot string
}

// newFloor connects to the backends, prepares the two statements and
// loads the two scripts.
func newFloor(ctx context.Context, cfg config) (*floor, error) {
	dsn, err := withJITOff(cfg.postgresURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// airship's pool: postgres_max_conns open and idle.
	db.SetMaxOpenConns(cfg.postgresConns)
	db.SetMaxIdleConns(cfg.postgresConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	f := &floor{cfg: cfg, db: db, reservations: cfg.redisPrefix + "reservations", imageRoot: cfg.imageRoot}
	if f.insertStmt, err = db.PrepareContext(ctx, insertOrder); err == nil {
		f.selectStmt, err = db.PrepareContext(ctx, selectOrder)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: prepare airship's statements (is the database migrated by airship?): %w", err)
	}
	opts, err := redis.ParseURL(cfg.redisURL)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	// The least per command: no read or write deadline (a negative
	// timeout of -2 skips the SetDeadline calls); the request's context
	// still ends a command whose client went away.
	opts.PoolSize, opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = cfg.redisPool, -2, -2, 1
	f.rdb = redis.NewClient(opts)
	for _, s := range []*redis.Script{reserveScript, releaseScript} {
		if err := s.Load(ctx, f.rdb).Err(); err != nil {
			f.close()
			return nil, fmt.Errorf("redis: load script: %w", err)
		}
	}
	return f, nil
}

func (f *floor) close() {
	f.rdb.Close()
	f.db.Close()
}

// withJITOff adds jit=off to a PostgreSQL URL or key=value string unless
// it sets jit, as airship does (config.PostgresDSN), so that both
// run their statements under the same settings.
func withJITOff(dsn string) (string, error) {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("postgres URL: %w", err)
		}
		q := u.Query()
		if !q.Has("jit") {
			q.Set("jit", "off")
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	if !strings.Contains(dsn, "jit=") {
		dsn += " jit=off"
	}
	return dsn, nil
}

func (f *floor) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", f.getProduct)
	mux.HandleFunc("GET /orders/{id}", f.getOrder)
	mux.HandleFunc("POST /orders", f.postOrder)
	return mux
}

func (f *floor) productKey(id string) string { return f.cfg.redisPrefix + "product:{" + id + "}" }
func (f *floor) holdKey(id string) string    { return f.cfg.redisPrefix + "hold:{" + id + "}" }
func (f *floor) reservationKey(id string) string {
	return f.cfg.redisPrefix + "reservation:" + id
}

// GET /products/{id}: one HMGET.
func (f *floor) getProduct(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		sendError(w, http.StatusNotFound, "PRODUCT_NOT_FOUND", "Product ID "+id+" does not exist")
		return
	}
	vals, err := f.rdb.HMGet(r.Context(), f.productKey(id), productFields...).Result()
	if err != nil {
		unavailable(w, err)
		return
	}
	bp := getBuf()
	defer putBuf(bp)
	b, found, err := appendProduct(*bp, id, vals)
	switch {
	case err != nil:
		unavailable(w, err)
	case !found:
		sendError(w, http.StatusNotFound, "PRODUCT_NOT_FOUND", "Product ID "+id+" does not exist")
	default:
		*bp = append(b, '\n')
		send(w, http.StatusOK, *bp)
	}
}

// line is an order line as GET /orders/{id} reads it.
type line struct {
	id               int64
	productID, price string
	quantity         int64
}

// GET /orders/{id}: the order's lines in one prepared SELECT, then their
// products in one HMGET (one line) or one pipeline of HMGETs, as airship.
func (f *floor) getOrder(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	if !canonicalOrderID(raw) {
		sendError(w, http.StatusNotFound, "ORDER_NOT_FOUND", "Order ID "+raw+" does not exist")
		return
	}
	id, _ := strconv.ParseInt(raw, 10, 64)
	ctx := r.Context()
	rows, err := f.selectStmt.QueryContext(ctx, id)
	if err != nil {
		unavailable(w, err)
		return
	}
	var lines []line
	for rows.Next() {
		var (
			orderID     int64
			l           line
			incarnation sql.RawBytes
		)
		if err := rows.Scan(&orderID, &l.id, &l.productID, &l.price, &l.quantity, &incarnation); err != nil {
			rows.Close()
			unavailable(w, err)
			return
		}
		lines = append(lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		unavailable(w, err)
		return
	}
	if len(lines) == 0 {
		sendError(w, http.StatusNotFound, "ORDER_NOT_FOUND", "Order ID "+raw+" does not exist")
		return
	}
	products := make([][]any, len(lines))
	if len(lines) == 1 {
		products[0], err = f.rdb.HMGet(ctx, f.productKey(lines[0].productID), productFields...).Result()
	} else {
		pipe := f.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(lines))
		for i := range lines {
			cmds[i] = pipe.HMGet(ctx, f.productKey(lines[i].productID), productFields...)
		}
		_, err = pipe.Exec(ctx)
		for i := range cmds {
			products[i] = cmds[i].Val()
		}
	}
	if err != nil {
		unavailable(w, err)
		return
	}
	bp := getBuf()
	defer putBuf(bp)
	b := append(*bp, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"order_details":[`...)
	for i := range lines {
		l := &lines[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, l.id, 10)
		b = append(b, `,"product_id":`...)
		b = appendString(b, l.productID)
		b = append(b, `,"price":`...)
		b = appendString(b, l.price) // numeric(18,2): always two decimals
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, l.quantity, 10)
		b = append(b, `,"image":`...)
		if plain(f.imageRoot) && plain(l.productID) {
			b = append(append(append(append(append(b, '"'), f.imageRoot...), '/'), l.productID...), `.jpg"`...)
		} else {
			b = appendString(b, f.imageRoot+"/"+l.productID+".jpg")
		}
		b = append(b, `,"product":`...)
		var found bool
		if b, found, err = appendProduct(b, l.productID, products[i]); err != nil {
			unavailable(w, err)
			return
		}
		if !found {
			b = append(b, "null"...)
		}
		b = append(b, '}')
	}
	*bp = append(b, "]}\n"...)
	send(w, http.StatusOK, *bp)
}

// newOrder is the body of POST /orders.
type newOrder struct {
	OrderDetails []struct {
		ProductID string          `json:"product_id"`
		Price     json.RawMessage `json:"price"`
		Quantity  int64           `json:"quantity"`
	} `json:"order_details"`
}

// stockLine is the stock one product gives to an order: its lines'
// quantities summed, as airship reserves it (products.MergeLines).
type stockLine struct {
	productID string
	quantity  int64
	// incarnation is the one the reservation took the stock from.
	incarnation string
}

// POST /orders: as airship's orders.Service.Place with its Redis and
// PostgreSQL stores, in the same three round trips:
//
//  1. Redis, one pipeline: the reservation's record and its deadline in
//     the index, and reserve.lua for each product;
//  2. PostgreSQL: the prepared insert of the order, its lines and the
//     claim of its reservation, one statement;
//  3. Redis, one pipeline: the commit (the holds, the record and its
//     index entry deleted), before answering.
//
// A refused reservation is released (two round trips, as airship's
// Release). A failed insert is answered 503 and its reservation left to
// the recovery sweep of the airship that runs beside the floor, which
// settles it once its deadline passes.
func (f *floor) postOrder(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		sendError(w, http.StatusBadRequest, "BAD_REQUEST", "could not read the request body")
		return
	}
	var req newOrder
	if err := json.Unmarshal(body, &req); err != nil {
		sendError(w, http.StatusBadRequest, "BAD_REQUEST", "request body is not valid JSON")
		return
	}
	n := len(req.OrderDetails)
	if n < 1 || n > 100 {
		sendError(w, http.StatusBadRequest, "VALIDATION_ERROR", "order_details: must have from 1 to 100 items")
		return
	}
	ids, prices, qtys := make([]string, n), make([]string, n), make([]int64, n)
	stock := make([]stockLine, 0, n)
	for i, d := range req.OrderDetails {
		price := string(d.Price)
		if strings.HasPrefix(price, `"`) {
			_ = json.Unmarshal(d.Price, &price) // valid JSON: a string unquotes
		}
		if !validID(d.ProductID) || !validPrice(price) || d.Quantity < 1 {
			sendError(w, http.StatusBadRequest, "VALIDATION_ERROR",
				fmt.Sprintf("order_details[%d]: needs a product_id, a price of at most 2 decimals and a quantity of at least 1", i))
			return
		}
		ids[i], prices[i], qtys[i] = d.ProductID, price, d.Quantity
		stock = addStock(stock, d.ProductID, d.Quantity)
	}

	ctx := r.Context()
	reservation := uuid.NewString()
	deadline := time.Now().Add(f.cfg.hold).UnixMilli()
	record := appendRecord(make([]byte, 0, 64), stock)
	var cmds []*redis.Cmd
	err = f.withScripts(ctx, func() error {
		pipe := f.rdb.Pipeline()
		pipe.Set(ctx, f.reservationKey(reservation), record, 0)
		pipe.ZAdd(ctx, f.reservations, redis.Z{Score: float64(deadline), Member: reservation})
		cmds = make([]*redis.Cmd, len(stock))
		for i, l := range stock {
			cmds[i] = reserveScript.EvalSha(ctx, pipe, []string{f.productKey(l.productID), f.holdKey(l.productID)},
				reservation, l.quantity, "")
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		unavailable(w, err)
		return
	}
	for i := range stock {
		l := &stock[i]
		// {1, incarnation} when held, {-1} when there is no such product,
		// {-2 - available} when there is not enough stock.
		reply, _ := cmds[i].Slice()
		code := int64(-1)
		if len(reply) > 0 {
			code, _ = reply[0].(int64)
		}
		if code == 1 {
			if len(reply) > 1 {
				l.incarnation, _ = reply[1].(string)
			}
			continue
		}
		f.release(context.WithoutCancel(ctx), reservation, stock)
		if code > -2 {
			sendError(w, http.StatusNotFound, "PRODUCT_NOT_FOUND", "Product ID "+l.productID+" does not exist")
		} else {
			sendError(w, http.StatusConflict, "OUT_OF_STOCK", fmt.Sprintf("Product ID %s is out of stock: %d requested, %d available",
				l.productID, l.quantity, -2-code))
		}
		return
	}

	incs := make([]string, n)
	for i, id := range ids {
		for _, l := range stock {
			if l.productID == id {
				incs[i] = l.incarnation
			}
		}
	}
	var (
		orderID int64
		lineIDs pq.Int64Array
	)
	err = f.insertStmt.QueryRowContext(ctx, reservation, pq.StringArray(ids), pq.StringArray(prices),
		pq.Int64Array(qtys), pq.StringArray(incs)).Scan(&orderID, &lineIDs, new(int))
	if err != nil {
		unavailable(w, err)
		return
	}

	cctx := context.WithoutCancel(ctx)
	pipe := f.rdb.Pipeline()
	for _, l := range stock {
		pipe.HDel(cctx, f.holdKey(l.productID), reservation)
	}
	pipe.ZRem(cctx, f.reservations, reservation)
	pipe.Del(cctx, f.reservationKey(reservation))
	if _, err := pipe.Exec(cctx); err != nil {
		log.Printf("commit reservation %s (left to the recovery sweep): %v", reservation, err)
	}

	bp := getBuf()
	defer putBuf(bp)
	*bp = append(strconv.AppendInt(append(*bp, `{"id":`...), orderID, 10), "}\n"...)
	send(w, http.StatusOK, *bp)
}

// release gives a refused reservation's stock back, then forgets it, as
// airship's redisstore.Store.Release.
func (f *floor) release(ctx context.Context, reservation string, stock []stockLine) {
	err := f.withScripts(ctx, func() error {
		pipe := f.rdb.Pipeline()
		for _, l := range stock {
			releaseScript.EvalSha(ctx, pipe, []string{f.productKey(l.productID), f.holdKey(l.productID)}, reservation)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err == nil {
		pipe := f.rdb.Pipeline()
		pipe.ZRem(ctx, f.reservations, reservation)
		pipe.Del(ctx, f.reservationKey(reservation))
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		log.Printf("release reservation %s (left to the recovery sweep): %v", reservation, err)
	}
}

// withScripts runs exec, which calls the scripts by their SHA1; if Redis
// no longer knows them (restarted, flushed), it loads them and runs exec
// once more (every such pipeline here is idempotent).
func (f *floor) withScripts(ctx context.Context, exec func() error) error {
	err := exec()
	if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return err
	}
	for _, s := range []*redis.Script{reserveScript, releaseScript} {
		if err := s.Load(ctx, f.rdb).Err(); err != nil {
			return err
		}
	}
	return exec()
}

// addStock adds a line's quantity to its product's stock line.
func addStock(stock []stockLine, productID string, quantity int64) []stockLine {
	for i := range stock {
		if stock[i].productID == productID {
			stock[i].quantity += quantity
			return stock
		}
	}
	return append(stock, stockLine{productID: productID, quantity: quantity})
}

// appendRecord appends a reservation's record as airship writes it
// (products/reservation.go: [{"p":ID,"q":QUANTITY}], no incarnation for a new
// order's lines), which airship's recovery sweep reads.
func appendRecord(b []byte, stock []stockLine) []byte {
	b = append(b, '[')
	for i, l := range stock {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(append(b, `{"p":`...), l.productID)
		b = append(strconv.AppendInt(append(b, `,"q":`...), l.quantity, 10), '}')
	}
	return append(b, ']')
}

// appendProduct appends the product document of an HMGET reply in
// productFields order; found is false when the hash does not exist.
func appendProduct(b []byte, id string, vals []any) (_ []byte, found bool, _ error) {
	if len(vals) != len(productFields) || vals[0] == nil {
		return b, false, nil
	}
	title, _ := vals[0].(string)
	b = appendString(append(b, `{"id":`...), id)
	b = appendString(append(b, `,"title":`...), title)
	for i, name := range [...]string{`,"passenger_capacity":`, `,"maximum_speed":`, `,"in_stock":`} {
		s, _ := vals[i+1].(string)
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return b, false, fmt.Errorf("product %s: field %s: %w", id, productFields[i+1], err)
		}
		b = strconv.AppendInt(append(b, name...), v, 10)
	}
	return append(b, '}'), true, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// jsonType is the Content-Type of every answer, shared (net/http only
// reads it).
var jsonType = []string{"application/json"}

func send(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// sendError sends the contract's error document, as airship writes it
// (encoding/json: the fields in this order, a final newline).
func sendError(w http.ResponseWriter, status int, code, message string) {
	b := make([]byte, 0, 64+len(message))
	b = append(append(append(b, `{"error":"`...), code...), `","message":`...)
	b = appendString(b, message)
	send(w, status, append(b, "}\n"...))
}

// unavailable answers 503 for a backend error, as airship does, and logs it.
func unavailable(w http.ResponseWriter, err error) {
	if !errors.Is(err, context.Canceled) {
		log.Printf("backend: %v", err)
	}
	sendError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "a backend is unavailable or busy; retry later")
}

// plain reports whether s goes into a JSON string as it is: printable
// ASCII without the characters encoding/json escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendString appends s as encoding/json writes a string: copied when
// plain, escaped by encoding/json itself otherwise.
func appendString(b []byte, s string) []byte {
	if !plain(s) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...)
	}
	return append(append(append(b, '"'), s...), '"')
}

// validID is airship's product id rule: 1 to 128 of [A-Za-z0-9._~-], not
// "." or "..". Other ids name no product (and could not form a key).
func validID(id string) bool {
	if len(id) == 0 || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}

// canonicalOrderID: an order id as airship writes them, 1 to 10 digits
// without a leading zero.
func canonicalOrderID(s string) bool {
	if len(s) == 0 || len(s) > 10 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validPrice: digits, then at most two decimals, at most 16 integer digits
// (numeric(18,2)).
func validPrice(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if len(whole) == 0 || len(whole) > 16 || (dot && (len(frac) == 0 || len(frac) > 2)) {
		return false
	}
	for _, part := range [...]string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}
