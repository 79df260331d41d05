package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/testbackend"
)

// These tests run the airship binary as a separate process, to kill it.

var (
	// buildTags are the tags the binary is built with: those of the test
	// run (remote in a build with -tags remote; see remote_test.go).
	buildTags string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds airship once per test run, into a directory TestMain
// removes at the end.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airship-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "airship")
		// Built as make build does, without cgo: the tests prove the pure-Go
		// binary works, embedded store included.
		build := exec.Command("go", "build", "-tags", buildTags, "-o", binPath, "github.com/airshipltd/airship")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running airship binary.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	logs   *bytes.Buffer
	exited chan error
}

// startProcess starts airship serve with env and waits until it answers.
func startProcess(t *testing.T, env ...string) *process {
	t.Helper()
	addr := testbackend.FreeAddr(t)
	cmd := exec.Command(binary(t), "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), append([]string{"AIRSHIP_ADDR=" + addr, "AIRSHIP_LOG_LEVEL=warn", "AIRSHIP_METRICS_ADDR=127.0.0.1:0"}, env...)...)
	p := launch(t, cmd, "http://"+addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("airship did not start: %v\n%s", err, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launch starts cmd with its output kept in the process's logs, and kills
// it when the test ends if it is still running.
func launch(t *testing.T, cmd *exec.Cmd, url string) *process {
	t.Helper()
	p := &process{t: t, cmd: cmd, url: url, logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// stop signals the process and returns its exit error.
func (p *process) stop(sig syscall.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(30 * time.Second):
		p.t.Fatalf("airship did not exit on %v\n%s", sig, p.logs)
		return nil
	}
}

func (p *process) call(method, path, body string) (int, []byte, error) {
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (p *process) must(method, path, body string, status int) []byte {
	p.t.Helper()
	got, b, err := p.call(method, path, body)
	if err != nil || got != status {
		p.t.Fatalf("%s %s = %d %s, %v; want %d\n%s", method, path, got, b, err, status, p.logs)
	}
	return b
}

// processBackends are the environments the process tests run airship in:
// each returns the environment of a fresh store for the (sub)test.
var processBackends = map[string]func(t *testing.T) []string{
	"embedded": func(t *testing.T) []string { return []string{"AIRSHIP_DATA_DIR=" + t.TempDir()} },
	"postgres+redis": func(t *testing.T) []string {
		return []string{
			"AIRSHIP_POSTGRES_URL=" + testbackend.PostgresURL(t),
			"AIRSHIP_REDIS_URL=" + testbackend.RedisURL(),
			"AIRSHIP_REDIS_PREFIX=" + testbackend.RedisPrefix(t),
		}
	},
}

// TestKilledProcessKeepsAcknowledgedWrites: every write answered 2xx
// survives kill -9 of the embedded store's process.
func TestKilledProcessKeepsAcknowledgedWrites(t *testing.T) {
	env := []string{"AIRSHIP_DATA_DIR=" + t.TempDir()}
	p := startProcess(t, env...)
	p.must("POST", "/products", odyssey, 200)
	for range 5 {
		p.must("POST", "/orders", orderOfOne, 200)
	}
	p.must("PATCH", "/products/the_odyssey", `{"title": "The Odyssey II"}`, 200)
	if err := p.stop(syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}

	p = startProcess(t, env...)
	product := p.must("GET", "/products/the_odyssey", "", 200)
	assertJSON(t, product, `{"id": "the_odyssey", "title": "The Odyssey II", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 5}`)
	var list []map[string]any
	json.Unmarshal(p.must("GET", "/orders", "", 200), &list)
	if len(list) != 5 {
		t.Fatalf("%d orders after kill -9; want 5", len(list))
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
	}
}

// TestGracefulShutdownUnderLoad: on SIGTERM airship stops accepting,
// finishes the requests in flight and exits 0; every order it answered
// 200 for is there after a restart, and stock matches the orders.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	for name, backend := range processBackends {
		t.Run(name, func(t *testing.T) {
			env := backend(t)
			p := startProcess(t, env...)
			p.must("POST", "/products", strings.Replace(odyssey, ": 10}", ": 100000}", 1), 200)
			var (
				mu    sync.Mutex
				acked []int64
				stop  atomic.Bool
				wg    sync.WaitGroup
			)
			for range 8 {
				wg.Go(func() {
					for !stop.Load() {
						status, body, err := p.call("POST", "/orders", orderOfOne)
						if err != nil {
							return // the server has closed
						}
						if status == 200 {
							var o struct{ ID int64 }
							json.Unmarshal(body, &o)
							mu.Lock()
							acked = append(acked, o.ID)
							mu.Unlock()
						}
					}
				})
			}
			time.Sleep(time.Second)
			if err := p.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("exit after SIGTERM under load: %v; want 0\n%s", err, p.logs)
			}
			stop.Store(true)
			wg.Wait()
			if len(acked) == 0 {
				t.Fatal("no order was acknowledged before the shutdown; the test exercised nothing")
			}

			p = startProcess(t, env...)
			for _, id := range acked {
				p.must("GET", fmt.Sprintf("/orders/%d", id), "", 200)
			}
			// Count every order, a page of 1000 at a time.
			var list []struct{ ID int64 }
			for after := int64(0); ; {
				var page []struct{ ID int64 }
				json.Unmarshal(p.must("GET", fmt.Sprintf("/orders?limit=1000&after=%d", after), "", 200), &page)
				list = append(list, page...)
				if len(page) < 1000 {
					break
				}
				after = page[len(page)-1].ID
			}
			var product struct {
				InStock int64 `json:"in_stock"`
			}
			json.Unmarshal(p.must("GET", "/products/the_odyssey", "", 200), &product)
			if product.InStock+int64(len(list)) != 100000 {
				t.Fatalf("stock %d + %d orders != 100000 (%d acknowledged)", product.InStock, len(list), len(acked))
			}
			p.stop(syscall.SIGTERM)
		})
	}
}

// TestSmokeScript runs test/smoketest.sh (make smoke) against the binary.
func TestSmokeScript(t *testing.T) {
	p := startProcess(t, "AIRSHIP_DATA_DIR="+t.TempDir())
	out, err := exec.Command("bash", "../test/smoketest.sh", p.url).CombinedOutput()
	if err != nil {
		t.Fatalf("smoketest.sh: %v\n%s", err, out)
	}
	p.stop(syscall.SIGTERM)
}

// TestPartialConfigurationRefused: only one backend URL is an error at
// start, with a message naming what is missing.
func TestPartialConfigurationRefused(t *testing.T) {
	cmd := exec.Command(binary(t), "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "AIRSHIP_REDIS_URL=redis://127.0.0.1:6379/0", "AIRSHIP_POSTGRES_URL=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AIRSHIP_POSTGRES_URL is not set") {
		t.Fatalf("serve with only Redis: %v\n%s\nwant a non-zero exit naming AIRSHIP_POSTGRES_URL", err, out)
	}
}

// migrateCmd runs `airship migrate args...` in env and returns its output.
func migrateCmd(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"migrate"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMigrateDownGuarded: `migrate down` needs --confirm; after it, a
// running server is not ready (it used to answer /readyz 200 while every
// request failed), and `migrate up` makes it ready again.
func TestMigrateDownGuarded(t *testing.T) {
	for name, backend := range processBackends {
		t.Run(name, func(t *testing.T) {
			env := backend(t)
			p := startProcess(t, env...)
			p.must("POST", "/products", odyssey, 200)
			p.must("POST", "/orders", orderOfOne, 200)
			out, err := migrateCmd(t, env, "down")
			if err == nil || !strings.Contains(out, "--confirm") {
				t.Fatalf("migrate down without --confirm: %v\n%s", err, out)
			}
			p.must("GET", "/readyz", "", 200)
			p.must("GET", "/orders/1", "", 200)

			if out, err := migrateCmd(t, env, "down", "--confirm"); err != nil {
				t.Fatalf("migrate down --confirm: %v\n%s", err, out)
			}
			body := p.must("GET", "/readyz", "", 503)
			if !strings.Contains(string(body), "SERVICE_UNAVAILABLE") {
				t.Fatalf("/readyz after migrate down: %s", body)
			}
			if out, err := migrateCmd(t, env, "up"); err != nil {
				t.Fatalf("migrate up: %v\n%s", err, out)
			}
			p.must("GET", "/readyz", "", 200)
			p.must("GET", "/orders/1", "", 200)
			p.must("POST", "/orders", orderOfOne, 200)
			p.stop(syscall.SIGTERM)
		})
	}
}
