//go:build observability

// Package observability runs a real Prometheus against a running airship:
// Prometheus scrapes airship's metrics listener every second and evaluates
// deploy/observability/alerts.yaml while the test drives traffic (with a
// Redis outage and work for the recovery sweep); then every PromQL
// expression of the Grafana dashboard and of the rules is evaluated
// through Prometheus' HTTP API, and must be valid and return series. It
// also runs `promtool check rules` and the rules' unit tests.
//
//	make test-observability
//
// It needs Debian's prometheus package (prometheus and promtool), which
// `make test-observability` installs if it is missing, and the local
// PostgreSQL and Redis.
package observability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
)

const (
	repoRoot  = "../.."
	rulesFile = "deploy/observability/alerts.yaml"
	rulesTest = "deploy/observability/alerts_test.yaml"
	dashboard = "deploy/observability/airship-dashboard.json"
	install   = "install Debian's prometheus package (`apt-get install prometheus`), or run `make test-observability`, which does"
)

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: %s", name, install)
	}
	return p
}

// TestPromtool runs the promtool commands of docs/operations.md, the block
// marked as run by this test, as written, from the repository: the rules'
// check and their unit tests. The block's last command, make
// test-observability, is the target that runs this test.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	cmds := promtoolDocCommands(t)
	for _, want := range []string{"promtool check rules " + rulesFile, "promtool test rules " + rulesTest} {
		if !slices.Contains(cmds, want) {
			t.Errorf("docs/operations.md no longer runs `%s`; update this test", want)
		}
	}
	for _, c := range cmds {
		args := strings.Fields(c)
		if args[0] != "promtool" {
			t.Fatalf("docs/operations.md: `%s`: this test runs promtool commands and make test-observability only", c)
		}
		cmd := exec.Command(promtool, args[1:]...)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", c, err, out)
		} else {
			t.Logf("%s:\n%s", c, out)
		}
	}
}

// promtoolDocCommands returns the commands of the sh block of
// docs/operations.md marked <!-- doc-example: run by TestPromtool -->,
// comments removed, without make test-observability.
func promtoolDocCommands(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- doc-example: run by TestPromtool -->\n```sh\n")
	body, _, closed := strings.Cut(after, "\n```")
	if !ok || !closed {
		t.Fatal("docs/operations.md has no sh block marked <!-- doc-example: run by TestPromtool -->")
	}
	var cmds []string
	for _, line := range strings.Split(body, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.Join(strings.Fields(line), " "); line != "" && line != "make test-observability" {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// start runs a command until the test ends, its output in the test's log
// if the test fails.
func start(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// waitOK polls url until it answers 200.
func waitOK(t *testing.T, what, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// airship is the running server the traffic goes to.
type airship struct {
	t   *testing.T
	url string
}

func (a airship) call(method, path, body string, header ...string) int {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.url+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// round runs the contract's load scenario once, with a refusal of each
// kind, an idempotent replay and a route that does not exist.
func (a airship) round(t *testing.T, i int) {
	id := fmt.Sprintf("observed-%d-%d", time.Now().UnixNano(), i)
	must := func(got, want int, what string) {
		if got != want {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
	}
	must(a.call("POST", "/products", fmt.Sprintf(`{"id": %q, "title": "Observed", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 3}`, id)), 200, "create product")
	must(a.call("GET", "/products/"+id, ""), 200, "get product")
	line := func(q int) string {
		return fmt.Sprintf(`{"order_details": [{"product_id": %q, "price": "100000.99", "quantity": %d}]}`, id, q)
	}
	must(a.call("POST", "/orders", line(1)), 200, "create order")
	must(a.call("POST", "/orders", line(1), "Idempotency-Key", id), 200, "create order with a key")
	must(a.call("POST", "/orders", line(1), "Idempotency-Key", id), 200, "replay")
	must(a.call("POST", "/orders", line(50)), 409, "out of stock")
	must(a.call("POST", "/orders", `{"order_details": [{"product_id": "absent", "price": "1", "quantity": 1}]}`), 404, "not found")
	must(a.call("GET", "/orders?limit=5", ""), 200, "list orders")
	must(a.call("GET", "/no/such/"+id, ""), 404, "unmatched route")
	must(a.call("DELETE", "/products/"+id, ""), 204, "delete product")
}

// promQuery runs an instant query; it returns the number of series of
// the result, or the error Prometheus gave.
func promQuery(prom, expr string) (int, error) {
	resp, err := http.Get(prom + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s", r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(r.Data.Result), nil
}

// grafanaVars stand for the dashboard's variables and Grafana's macros.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "30s", "$__range", "2m", "$__interval", "5s",
	"$job", "airship", "$instance", ".*",
)

// labelValues is Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)

// dashboardExprs returns every PromQL expression of the dashboard (its
// panels' targets and its variables' queries), by where it is.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, dashboard))
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		if m := labelValues.FindStringSubmatch(text); m != nil {
			text = m[1]
		}
		out["variable "+v.Name] = text
	}
	if len(out) < 20 {
		t.Fatalf("only %d expressions found in the dashboard", len(out))
	}
	return out
}

// TestPrometheusEvaluatesDashboardAndRules is the test described in the
// package comment.
func TestPrometheusEvaluatesDashboardAndRules(t *testing.T) {
	prometheus := tool(t, "prometheus")
	tmp := t.TempDir()

	// airship, built from this repository, on PostgreSQL and on Redis
	// through a proxy the test can cut.
	bin := filepath.Join(tmp, "airship")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pgURL := testbackend.PostgresURL(t)
	prefix := testbackend.RedisPrefix(t)
	ru, _ := url.Parse(testbackend.RedisURL())
	redisProxy := testbackend.NewProxy(t, ru.Host)
	proxied := *ru
	proxied.Host = redisProxy.Addr()
	apiAddr, metricsAddr := testbackend.FreeAddr(t), testbackend.FreeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(),
		"AIRSHIP_ADDR="+apiAddr, "AIRSHIP_METRICS_ADDR="+metricsAddr,
		"AIRSHIP_POSTGRES_URL="+pgURL, "AIRSHIP_REDIS_URL="+proxied.String(), "AIRSHIP_REDIS_PREFIX="+prefix,
		"AIRSHIP_BACKEND_TIMEOUT=500ms", "AIRSHIP_RESERVATION_TIMEOUT=3s", "AIRSHIP_RECOVERY_INTERVAL=1s",
		"AIRSHIP_LOG_LEVEL=warn")
	start(t, "airship", cmd)
	waitOK(t, "airship", "http://"+apiAddr+"/readyz", 30*time.Second)
	waitOK(t, "airship's metrics", "http://"+metricsAddr+"/metrics", 5*time.Second)

	// Prometheus, scraping airship every second and evaluating the rules.
	rules, err := filepath.Abs(filepath.Join(repoRoot, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	promAddr := testbackend.FreeAddr(t)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: airship
    static_configs:
      - targets: [%q]
`, rules, metricsAddr)
	if err := os.WriteFile(filepath.Join(tmp, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "prometheus", exec.Command(prometheus,
		"--config.file="+filepath.Join(tmp, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(tmp, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn"))
	prom := "http://" + promAddr
	waitOK(t, "Prometheus", prom+"/-/ready", 30*time.Second)

	// Traffic, with a Redis outage in the middle.
	a := airship{t: t, url: "http://" + apiAddr}
	for i := range 20 {
		a.round(t, i)
	}
	redisProxy.Stop()
	for range 5 {
		if got := a.call("GET", "/products/any", ""); got != http.StatusServiceUnavailable {
			t.Fatalf("GET /products/any during the Redis outage: %d, want 503", got)
		}
	}
	redisProxy.Start()
	waitOK(t, "airship after the outage", "http://"+apiAddr+"/readyz", 30*time.Second)

	// Work for the recovery sweep: a reservation whose request died, and
	// a restock an order deletion left pending.
	ctx := t.Context()
	opts, _ := redis.ParseURL(testbackend.RedisURL())
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	stock := redisstore.New(rdb, prefix)
	if err := stock.Create(ctx, products.Product{ID: "swept", Title: "Swept", InStock: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := stock.Reserve(ctx, products.Reservation{ID: "died", Deadline: time.Now().Add(-time.Minute),
		Lines: []products.Line{{ProductID: "swept", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := sqlstore.NewPostgres(db)
	if a.call("POST", "/orders", `{"order_details": [{"product_id": "swept", "price": "1.00", "quantity": 1}]}`) != 200 {
		t.Fatal("order of swept refused")
	}
	last, err := store.List(ctx, 0, 1000)
	if err != nil || len(last) == 0 {
		t.Fatalf("list orders: %v", err)
	}
	o := last[len(last)-1]
	if err := store.Delete(ctx, o.ID, orders.Change{Expect: o.Lines, RestockID: "left-pending",
		Restock: []products.Line{{ProductID: "swept", Quantity: 1, Incarnation: o.Lines[0].Incarnation}}}); err != nil {
		t.Fatal(err)
	}

	// More traffic while Prometheus sees the sweep do its work.
	deadline := time.Now().Add(60 * time.Second)
	for i := 20; ; i++ {
		a.round(t, i)
		n, err := promQuery(prom, `airship_recovery_restocks_replayed_total >= 1 and on (job) airship_recovery_reservations_released_total >= 1`)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not see the sweep's work within a minute (%v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for range 15 { // a few more scrapes and rule evaluations
		a.round(t, 0)
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("cardinality", func(t *testing.T) { checkCardinality(t, a, prom) })
	t.Run("dashboard", func(t *testing.T) {
		for where, expr := range dashboardExprs(t) {
			q := grafanaVars.Replace(expr)
			n, err := promQuery(prom, q)
			switch {
			case err != nil:
				t.Errorf("%s: Prometheus refuses %s: %v", where, q, err)
			case n == 0:
				t.Errorf("%s: no series for %s", where, q)
			}
		}
	})
	t.Run("rules", func(t *testing.T) { checkRules(t, prom) })
}

// comparison is the threshold at the end of an alert's expression.
var comparison = regexp.MustCompile(`\s*(==|!=|>=|<=|>|<)\s*[0-9.e+-]+\s*$`)

// checkRules checks every rule Prometheus loaded: evaluated without error,
// recording rules with series, each alert's expression valid, and its
// signal (the expression without its threshold) with series.
func checkRules(t *testing.T, prom string) {
	resp, err := http.Get(prom + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string    `json:"name"`
					Query          string    `json:"query"`
					Type           string    `json:"type"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			n++
			if rule.Health != "ok" || rule.LastError != "" || rule.LastEvaluation.IsZero() {
				t.Errorf("rule %s: health %q, last error %q, last evaluation %s", rule.Name, rule.Health, rule.LastError, rule.LastEvaluation)
			}
			if _, err := promQuery(prom, rule.Query); err != nil {
				t.Errorf("rule %s: Prometheus refuses %s: %v", rule.Name, rule.Query, err)
			}
			signal := rule.Name
			if rule.Type == "alerting" {
				signal = comparison.ReplaceAllString(rule.Query, "")
				if signal == rule.Query {
					t.Errorf("alert %s: no threshold at the end of %s", rule.Name, rule.Query)
				}
			}
			if got, err := promQuery(prom, signal); err != nil || got == 0 {
				t.Errorf("rule %s: no series for %s (%v)", rule.Name, signal, err)
			}
		}
	}
	if n != 13 {
		t.Errorf("Prometheus loaded %d rules, want the 13 of %s", n, rulesFile)
	}
}

// checkCardinality sends 10,000 requests to random paths that match no
// route, with random methods, and checks that Prometheus holds no more
// airship series afterwards than before.
func checkCardinality(t *testing.T, a airship, prom string) {
	// seriesAfter returns the number of airship series of a successful
	// scrape that began after since: it waits for one (a scrape may time
	// out on a busy machine, and its series then go stale).
	seriesAfter := func(since time.Time) int {
		t.Helper()
		query := fmt.Sprintf(`count({job="airship"}) and on() (up{job="airship"} == 1) and on() (timestamp(up{job="airship"}) > %d)`, since.Unix()+1)
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(prom + "/api/v1/query?" + url.Values{"query": {query}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Data struct {
					Result []struct {
						Value [2]any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			if len(r.Data.Result) == 1 {
				var n int
				fmt.Sscan(r.Data.Result[0].Value[1].(string), &n)
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("no successful scrape of airship within 60 s after %s", since.Format(time.TimeOnly))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// One unmatched request of each kind first, so that the series they
	// make exist before the count.
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"}
	for _, m := range methods {
		a.call(m, "/warm/up", "")
	}
	before := seriesAfter(time.Now())
	work := make(chan int)
	done := make(chan struct{})
	for w := 0; w < 8; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range work {
				req, _ := http.NewRequest(methods[i%len(methods)], fmt.Sprintf("%s/%x/%d?q=%d", a.url, time.Now().UnixNano(), i, i), nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for i := range 10_000 {
		work <- i
	}
	close(work)
	for range 8 {
		<-done
	}
	if after := seriesAfter(time.Now()); after != before {
		t.Errorf("Prometheus holds %d airship series after 10,000 requests to random paths, %d before", after, before)
	} else {
		t.Logf("%d airship series before and after 10,000 requests to random paths", before)
	}
}
