//go:build browser

// Package browser checks the interactive API documentation in a real
// browser: airship is built and started on the embedded store, Chromium
// (headless) opens /docs and /redoc, and every request the pages make must
// go to airship itself. Run it with `make test-browser`; it needs
// /usr/bin/chromium (or $CHROMIUM).
package browser_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// repoRoot is where go test runs this package from, two levels down.
const repoRoot = "../.."

const (
	// Not the document's example id, which Swagger UI fills in by itself.
	productID    = "browser-test.airship_1"
	productTitle = "The Browser Test (airship)"
)

func TestDocsInBrowser(t *testing.T) {
	base := startAirship(t)
	createProduct(t, base)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tab, rec := newBrowser(t, ctx)

	t.Run("swagger-ui", func(t *testing.T) {
		const op = "#operations-products-getProduct"
		const idInput = op + ` tr[data-param-name="id"] input`
		if err := chromedp.Do(tab,
			chromedp.Navigate(base+"/docs"),
			chromedp.WaitVisible(chromedp.CSS(op)),
			chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
			chromedp.WaitVisible(chromedp.CSS(op+" .try-out__btn")),
			chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
			chromedp.WaitVisible(chromedp.CSS(idInput)),
			// Select the example id Swagger UI filled in, so typing replaces it.
			chromedp.Evaluate[chromedp.Void](`document.querySelector('`+idInput+`').select()`),
			chromedp.SendKeys(chromedp.CSS(idInput), productID),
			chromedp.Click(chromedp.CSS(op+" .execute")),
		); err != nil {
			t.Fatalf("swagger ui: %v\n%s", err, rec.summary())
		}
		// The live response: status 200 and the product as JSON.
		ok, err := chromedp.Run(tab, chromedp.Poll[bool](fmt.Sprintf(`(() => {
			const r = document.querySelector(%q);
			if (!r) return false;
			const status = r.querySelector('.response-col_status');
			return !!status && status.innerText.trim() === '200' && r.innerText.includes(%q);
		})()`, op+" .live-responses-table .response", productTitle), chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil || !ok {
			text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector('`+op+`')?.innerText ?? ''`))
			t.Fatalf("swagger ui: no 200 response with the product's title (%v); the operation shows:\n%s\n%s", err, text, rec.summary())
		}
		if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](
			`document.querySelector('`+op+`').scrollIntoView({block: 'start'}); window.scrollBy(0, -8)`)); err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, tab, "swagger-ui.png")
	})

	t.Run("redoc", func(t *testing.T) {
		// A deep link: ReDoc opens the products tag in the menu and
		// scrolls to the operation.
		if err := chromedp.Do(tab, chromedp.Navigate(base+"/redoc#tag/products/operation/getProduct")); err != nil {
			t.Fatalf("redoc: %v", err)
		}
		// The menu lists the operations by summary, and the content has a
		// section for each operation.
		ok, err := chromedp.Run(tab, chromedp.Poll[bool](`(() => {
			const menu = document.querySelector('.menu-content');
			const api = document.querySelector('.api-content');
			if (!menu || !api) return false;
			const ops = ['Create a product', 'Get a product', 'Place an order', 'Get an order with its products', 'Readiness'];
			return menu.innerText.includes('Get a product') && ops.every(s => api.innerText.includes(s));
		})()`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil || !ok {
			text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("redoc: the operations did not render (%v); the page shows:\n%.2000s\n%s", err, text, rec.summary())
		}
		time.Sleep(time.Second) // ReDoc scrolls to the deep link after rendering
		saveScreenshot(t, tab, "redoc.png")
	})

	// Let late requests (fonts, images) arrive before checking.
	time.Sleep(500 * time.Millisecond)
	rec.check(t, base)
}

// recorder keeps what the pages did on the network and in the console.
type recorder struct {
	mu       sync.Mutex
	requests []string
	console  []string
}

func (r *recorder) listen(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.requests = append(r.requests, ev.Request.Method+" "+ev.Request.URL)
	case *network.EventWebSocketCreated:
		r.requests = append(r.requests, "WEBSOCKET "+ev.URL)
	case *log.EventEntryAdded:
		r.console = append(r.console, fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
	case *runtime.EventExceptionThrown:
		r.console = append(r.console, "exception: "+exceptionText(ev.ExceptionDetails))
	}
}

func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "requests:\n  " + strings.Join(r.requests, "\n  ") + "\nconsole:\n  " + strings.Join(r.console, "\n  ")
}

// check fails the test for any request that left the server, and for any
// content security policy violation (a blocked attempt to leave it).
func (r *recorder) check(t *testing.T, base string) {
	t.Helper()
	server, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var sawSpec, sawTryIt bool
	for _, req := range r.requests {
		_, raw, _ := strings.Cut(req, " ")
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to an unparsable URL %q", raw)
			continue
		}
		switch u.Scheme {
		case "data", "blob", "about":
			continue
		}
		if u.Host != server.Host {
			t.Errorf("the page requested %s, outside the test server %s", req, server.Host)
		}
		sawSpec = sawSpec || u.Path == "/openapi.json"
		sawTryIt = sawTryIt || u.Path == "/products/"+productID
	}
	if !sawSpec || !sawTryIt {
		t.Errorf("the recorded requests miss /openapi.json or the try-it-out call; the recorder is broken:\n%s",
			strings.Join(r.requests, "\n"))
	}
	for _, c := range r.console {
		if strings.Contains(c, "Content Security Policy") {
			t.Errorf("blocked by the content security policy: %s", c)
		}
	}
	t.Logf("%d requests, all to %s", len(r.requests), server.Host)
	if len(r.console) > 0 {
		t.Logf("console:\n  %s", strings.Join(r.console, "\n  "))
	}
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// tab whose network and console activity rec records.
func newBrowser(t *testing.T, ctx context.Context) (context.Context, *recorder) {
	t.Helper()
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s (%v): install it with `apt-get install -y chromium` or set CHROMIUM", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium's own temporary files (its shared memory and crash
		// handler directories) go in the test's directory too, removed
		// with it.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	rec := &recorder{}
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(rec.listen))
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return tab, rec
}

func saveScreenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join(repoRoot, "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: docs/img/%s", name)
}

// startAirship builds airship and serves it on the embedded store in a
// temporary directory, on a free port of 127.0.0.1; it returns the base URL.
func startAirship(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "airship")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	dataDir := filepath.Join(tmp, "data")
	cmd := exec.Command(bin, "serve")
	// Run outside the repository, so its config.yaml is not read, and
	// with no AIRSHIP_* variable of the caller: the embedded store, no
	// API keys.
	cmd.Dir = tmp
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AIRSHIP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"AIRSHIP_ADDR="+addr,
		"AIRSHIP_DATA_DIR="+dataDir,
		"AIRSHIP_LOG_FORMAT=text",
		"AIRSHIP_METRICS_ADDR=127.0.0.1:0",
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs // exec copies from one goroutine at a time
	if err := cmd.Start(); err != nil {
		t.Fatalf("start airship: %v", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("airship log:\n%s", logs.String())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("airship exited before it was ready: %v\n%s", waitErr, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("airship not ready at %s after 30s (last error %v)", base, err)
		}
	}
}

func createProduct(t *testing.T, base string) {
	t.Helper()
	body := fmt.Sprintf(`{"id": %q, "title": %q, "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`,
		productID, productTitle)
	resp, err := http.Post(base+"/products", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create product: %d %s", resp.StatusCode, got)
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}
