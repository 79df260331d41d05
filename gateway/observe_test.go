package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airshipltd/airship/gateway"
)

// observed records what a RequestObserver is told.
type observed struct {
	mu       sync.Mutex
	inFlight int
	requests []string
}

func (o *observed) RequestStarted() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight++
}

func (o *observed) RequestFinished(route, method string, status int, _ time.Duration, _, _ int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight--
	o.requests = append(o.requests, method+" "+route+" "+http.StatusText(status))
}

// accessLines returns the access log lines at info or above.
func accessLines(buf *bytes.Buffer) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" {
			out = append(out, rec)
		}
	}
	return out
}

// TestAccessLogAndObserver: access_log decides which successes are logged
// at info; refusals always are; the observer gets route templates, never
// raw paths, and methods outside the API's as OTHER.
func TestAccessLogAndObserver(t *testing.T) {
	ready := func(context.Context) error { return nil }
	for _, c := range []struct {
		every     uint64
		successes int // of 10
	}{{0, 0}, {1, 10}, {3, 3}} {
		var buf bytes.Buffer
		obs := &observed{}
		log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		g := gateway.New(nil, nil, ready, gateway.Config{AccessLogEvery: c.every, Observer: obs}, log)
		for range 10 {
			g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
		}
		g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/no/such/thing", nil))
		g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/healthz", nil))
		lines := accessLines(&buf)
		ok, refused := 0, 0
		for _, l := range lines {
			if l["status"] == float64(200) {
				ok++
				if l["level"] != "INFO" || l["route"] != "/healthz" || l["request_id"] == "" {
					t.Errorf("access line %v", l)
				}
			} else {
				refused++
			}
		}
		if ok != c.successes || refused != 2 {
			t.Errorf("every %d: %d successes and %d refusals logged, want %d and 2:\n%s", c.every, ok, refused, c.successes, buf.String())
		}
		want := []string{"GET /healthz OK", "GET unmatched Not Found", "OTHER /healthz Method Not Allowed"}
		if obs.inFlight != 0 || len(obs.requests) != 12 || obs.requests[0] != want[0] ||
			obs.requests[10] != want[1] || obs.requests[11] != want[2] {
			t.Errorf("observer saw %d in flight and %v; want 0 and 10 × %q then %q", obs.inFlight, obs.requests, want[0], want[1:])
		}
	}
}
