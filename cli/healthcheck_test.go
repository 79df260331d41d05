package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runHealthcheck runs `airship healthcheck args...` and returns its output
// and error (a non-nil error is exit code 1). The command is made afresh:
// a cobra command keeps its flag values from one execution to the next.
func runHealthcheck(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "airship", SilenceErrors: true, SilenceUsage: true}
	cmd.PersistentFlags().String("config", "", "")
	cmd.AddCommand(healthcheckCommand())
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"healthcheck"}, args...))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func readyzServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(`{"error": "SERVICE_UNAVAILABLE", "message": "redis: connection refused"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHealthcheck(t *testing.T) {
	if c, _, err := Command().Find([]string{"healthcheck"}); err != nil || c.Name() != "healthcheck" {
		t.Fatalf("airship has no healthcheck command: %v", err)
	}
	ready := readyzServer(t, http.StatusOK)
	notReady := readyzServer(t, http.StatusServiceUnavailable)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more

	for _, tc := range []struct {
		name      string
		url       string
		wantError string // empty: exit 0
	}{
		{"ready", ready.URL + "/readyz", ""},
		{"not ready", notReady.URL + "/readyz", "503 Service Unavailable"},
		{"wrong path", ready.URL + "/nothing", "404 Not Found"},
		{"nothing listening", down.URL + "/readyz", "not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHealthcheck(t, "--url", tc.url, "--timeout", "5s")
			if tc.wantError == "" {
				if err != nil || !strings.Contains(out, "ready:") {
					t.Fatalf("healthcheck %s: %v, output %q; want success", tc.url, err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("healthcheck %s: error %v; want one containing %q", tc.url, err, tc.wantError)
			}
		})
	}
}

// TestHealthcheckDefaultURL: with no --url, the configured addr's /readyz
// is asked.
func TestHealthcheckDefaultURL(t *testing.T) {
	t.Chdir(t.TempDir()) // no config.yaml
	ready := readyzServer(t, http.StatusOK)
	port := ready.Listener.Addr().String()[strings.LastIndex(ready.Listener.Addr().String(), ":"):]
	t.Setenv("AIRSHIP_ADDR", port) // ":NNNN", as a server listening on every interface
	if out, err := runHealthcheck(t); err != nil || !strings.Contains(out, "http://127.0.0.1"+port+"/readyz") {
		t.Fatalf("healthcheck with AIRSHIP_ADDR=%s: %v, output %q", port, err, out)
	}
	notReady := readyzServer(t, http.StatusServiceUnavailable)
	t.Setenv("AIRSHIP_ADDR", notReady.Listener.Addr().String())
	if _, err := runHealthcheck(t); err == nil {
		t.Fatal("healthcheck of a server answering 503 succeeded")
	}
}

func TestReadyURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8000":          "http://127.0.0.1:8000/readyz",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/readyz",
		"[::]:8080":      "http://127.0.0.1:8080/readyz",
		"127.0.0.1:9000": "http://127.0.0.1:9000/readyz",
		"localhost:9000": "http://localhost:9000/readyz",
		"[::1]:9000":     "http://[::1]:9000/readyz",
	} {
		if got, err := readyURL(addr); err != nil || got != want {
			t.Errorf("readyURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := readyURL("8000"); err == nil {
		t.Error(`readyURL("8000") accepted an address without a port separator`)
	}
}

// TestHealthcheckTimeout: a server that never answers is not ready once
// --timeout has passed.
func TestHealthcheckTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	_, err := runHealthcheck(t, "--url", hang.URL+"/readyz", "--timeout", "200ms")
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("healthcheck of a server that never answers: %v; want a timeout", err)
	}
}

// TestHealthcheckRefusesTimeout: a --timeout that leaves no time is a
// usage error naming the flag, not a "not ready" that blames the server.
func TestHealthcheckRefusesTimeout(t *testing.T) {
	ready := readyzServer(t, http.StatusOK)
	for _, timeout := range []string{"0s", "0", "-1s"} {
		_, err := runHealthcheck(t, "--url", ready.URL+"/readyz", "--timeout", timeout)
		if err == nil || !strings.Contains(err.Error(), "--timeout must be positive") {
			t.Errorf("healthcheck --timeout %s: %v; want a usage error naming --timeout", timeout, err)
		}
	}
}
