package app_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airshipltd/airship/cli"
	"github.com/airshipltd/airship/internal/testbackend"
)

// TestLoadtestFailsAgainstAClosedPort: airship loadtest with nothing
// listening exits non-zero and says that no request succeeded, with the
// first error; it used to make thousands of refused requests, draw empty
// panels and exit 0. The URL follows AIRSHIP_ADDR, as healthcheck's does.
func TestLoadtestFailsAgainstAClosedPort(t *testing.T) {
	addr := testbackend.FreeAddr(t)
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(binary(t), "loadtest", "--users", "2", "--ramp-up", "0s", "--hold", "1s", "--out", out)
	cmd.Dir = t.TempDir() // no config.yaml
	cmd.Env = append(os.Environ(), "AIRSHIP_ADDR="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("loadtest against a closed port: %v, want exit status 1\n%s", err, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"load test: http://" + addr + ",", "no request succeeded", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr does not say %q:\n%s", want, msg)
		}
	}
	// The chart of the failed run shows the errors.
	svg, err := os.ReadFile(filepath.Join(out, "latency.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(svg), `data-name="errors/s"`) || strings.Contains(string(svg), " 0 errors") {
		t.Errorf("latency.svg does not show the errors:\n%s", svg)
	}
}

// TestLoadtestMaxErrorRate: a run against an airship whose deletes fail
// (one request in six) fails with the default --max-error-rate of 1% and
// passes with 50%.
func TestLoadtestMaxErrorRate(t *testing.T) {
	s := start(t, backends[1]) // the embedded store: the rate is the proxy's doing
	target, _ := url.Parse(s.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error": "UNEXPECTED_ERROR", "message": "unexpected error (request id x)"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	run := func(args ...string) (string, error) {
		cmd := cli.Command()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"loadtest", "--url", front.URL, "--users", "1", "--ramp-up", "0s", "--hold", "500ms",
			"--out", t.TempDir()}, args...))
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}
	out, err := run()
	if err == nil || !strings.Contains(err.Error(), "more than the 1.00% allowed") || !strings.Contains(err.Error(), "500 UNEXPECTED_ERROR") {
		t.Fatalf("default --max-error-rate: %v, want a failure with the rate and the first error\n%s", err, out)
	}
	if out, err := run("--max-error-rate", "0.5"); err != nil {
		t.Fatalf("--max-error-rate 0.5: %v\n%s", err, out)
	}
	if _, err := run("--max-error-rate", "2"); err == nil || !strings.Contains(err.Error(), "max-error-rate") {
		t.Fatalf("--max-error-rate 2: %v, want it refused", err)
	}
}
